package io.longdoc.engine.tokenizer;

/**
 * SentencePiece's precompiled normalization map ({@code normalizer_spec.precompiled_charsmap}):
 * a Darts double-array trie from input byte sequences to offsets in a pool of NUL-terminated
 * replacement strings.
 *
 * <p>Blob layout: uint32 little-endian trie size in bytes, the trie's 32-bit units, then the
 * string pool. Every index read from the blob is bounds-checked: a corrupt map never reads
 * outside it.
 */
final class CharsMap {
    private final int[] units;
    private final byte[] pool;

    CharsMap(byte[] blob) {
        if (blob.length < 4) {
            throw new TokenizerFormatException("precompiled_charsmap shorter than its 4-byte header");
        }
        long trieBytes = le32(blob, 0) & 0xFFFFFFFFL;
        if (trieBytes % 4 != 0 || trieBytes > blob.length - 4L || trieBytes == 0) {
            throw new TokenizerFormatException("precompiled_charsmap trie size " + trieBytes + " does not fit its " + blob.length + "-byte blob");
        }
        units = new int[(int) (trieBytes / 4)];
        for (int i = 0; i < units.length; i++) {
            units[i] = le32(blob, 4 + 4 * i);
        }
        int poolStart = 4 + (int) trieBytes;
        pool = new byte[blob.length - poolStart];
        System.arraycopy(blob, poolStart, pool, 0, pool.length);
    }

    /**
     * Longest rule matching a prefix of {@code in[pos, end)}. Returns the matched length, or 0;
     * on a match, {@code valueOut[0]} is the replacement's offset in the pool.
     */
    int longestMatch(byte[] in, int pos, int end, int[] valueOut) {
        int node = offset(units[0]);
        int longest = 0;
        for (int i = pos; i < end; i++) {
            int c = in[i] & 0xFF;
            node ^= c;
            if (node < 0 || node >= units.length) {
                break;
            }
            int unit = units[node];
            if ((unit & (0x80000000 | 0xFF)) != c) {
                break;
            }
            node ^= offset(unit);
            if (node < 0 || node >= units.length) {
                break;
            }
            if (((unit >>> 8) & 1) != 0) {
                longest = i + 1 - pos;
                valueOut[0] = units[node] & 0x7FFFFFFF;
            }
        }
        if (longest > 0 && valueOut[0] >= pool.length) {
            throw new TokenizerFormatException("precompiled_charsmap rule points past its string pool");
        }
        return longest;
    }

    byte[] pool() {
        return pool;
    }

    /** Length of the NUL-terminated replacement at {@code offset}. */
    int replacementLength(int offset) {
        int i = offset;
        while (i < pool.length && pool[i] != 0) {
            i++;
        }
        return i - offset;
    }

    private static int offset(int unit) {
        return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    }

    private static int le32(byte[] b, int at) {
        return (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8 | (b[at + 2] & 0xFF) << 16 | (b[at + 3] & 0xFF) << 24;
    }
}
