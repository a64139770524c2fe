package io.longdoc.engine.tokenizer;

import java.util.Arrays;

/**
 * Word bytes to their BPE ids, direct-mapped: a colliding word simply replaces the old one, so
 * memory stays bounded (a few MB) however large the corpus is. Natural text repeats a small
 * set of words, so most lookups hit.
 */
final class WordCache {
    private static final int SLOTS = 1 << 15;
    private final byte[][] keys = new byte[SLOTS][];
    private final int[][] values = new int[SLOTS][];

    int[] get(byte[] buf, int off, int len) {
        int slot = PieceTable.hash(buf, off, len) & (SLOTS - 1);
        byte[] key = keys[slot];
        if (key != null && key.length == len && Arrays.equals(key, 0, len, buf, off, off + len)) {
            return values[slot];
        }
        return null;
    }

    void put(byte[] buf, int off, int len, int[] ids) {
        int slot = PieceTable.hash(buf, off, len) & (SLOTS - 1);
        keys[slot] = Arrays.copyOfRange(buf, off, off + len);
        values[slot] = ids;
    }
}
