package io.longdoc.engine.tokenizer;

import java.util.Arrays;

/** A growable list of ints (token ids) without boxing. */
public final class IntList {
    int[] data = new int[64];
    int size;

    public void add(int v) {
        if (size == data.length) {
            data = Arrays.copyOf(data, size * 2);
        }
        data[size++] = v;
    }

    public void addAll(int[] values) {
        if (size + values.length > data.length) {
            data = Arrays.copyOf(data, Math.max(size + values.length, data.length * 2));
        }
        System.arraycopy(values, 0, data, size, values.length);
        size += values.length;
    }

    public int size() {
        return size;
    }

    public int get(int i) {
        return data[i];
    }

    public void clear() {
        size = 0;
    }

    public int[] toArray() {
        return Arrays.copyOf(data, size);
    }
}
