package io.longdoc.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Piece text (UTF-8 bytes) to piece id, looked up straight from a slice of a byte array, so the
 * encoder's inner loop allocates nothing. Open addressing with linear probing.
 */
final class PieceTable {
    private final byte[] keyBytes;   // all keys, back to back
    private final int[] keyOffset;   // (ids + 1): start of each id's key in keyBytes
    private final int[] slots;       // id + 1, or 0 when empty
    private final int mask;

    /** Builds the table over the pieces whose {@code include[id]} is true; null on a duplicate piece. */
    PieceTable(String[] pieces, boolean[] include) {
        byte[][] utf8 = new byte[pieces.length][];
        int total = 0, count = 0;
        for (int i = 0; i < pieces.length; i++) {
            utf8[i] = pieces[i].getBytes(StandardCharsets.UTF_8);
            total += utf8[i].length;
            if (include[i]) {
                count++;
            }
        }
        keyBytes = new byte[total];
        keyOffset = new int[pieces.length + 1];
        int at = 0;
        for (int i = 0; i < pieces.length; i++) {
            keyOffset[i] = at;
            System.arraycopy(utf8[i], 0, keyBytes, at, utf8[i].length);
            at += utf8[i].length;
        }
        keyOffset[pieces.length] = at;
        int capacity = Integer.highestOneBit(Math.max(16, count * 3)) << 1;
        slots = new int[capacity];
        mask = capacity - 1;
        for (int id = 0; id < pieces.length; id++) {
            if (!include[id]) {
                continue;
            }
            if (find(keyBytes, keyOffset[id], keyOffset[id + 1] - keyOffset[id]) >= 0) {
                throw new TokenizerFormatException("piece #" + id + " '" + pieces[id] + "' is defined twice");
            }
            int h = hash(keyBytes, keyOffset[id], keyOffset[id + 1] - keyOffset[id]) & mask;
            while (slots[h] != 0) {
                h = (h + 1) & mask;
            }
            slots[h] = id + 1;
        }
    }

    /** The id of the piece equal to {@code buf[off, off+len)}, or -1. */
    int find(byte[] buf, int off, int len) {
        int h = hash(buf, off, len) & mask;
        while (true) {
            int slot = slots[h];
            if (slot == 0) {
                return -1;
            }
            int id = slot - 1;
            int start = keyOffset[id];
            if (keyOffset[id + 1] - start == len
                    && Arrays.equals(keyBytes, start, start + len, buf, off, off + len)) {
                return id;
            }
            h = (h + 1) & mask;
        }
    }

    static int hash(byte[] buf, int off, int len) {
        int h = 0x811C9DC5;
        for (int i = off; i < off + len; i++) {
            h = (h ^ buf[i]) * 0x01000193;
        }
        return h ^ (h >>> 15);
    }
}
