package io.longdoc.engine.runtime;

import java.util.ArrayDeque;

/** Hands out and takes back the KV cache's fixed-size blocks. Used only by the scheduler thread. */
public final class BlockAllocator {
    private final ArrayDeque<Integer> free = new ArrayDeque<>();
    private final int total;

    public BlockAllocator(int blocks) {
        this.total = blocks;
        for (int i = 0; i < blocks; i++) {
            free.add(i);
        }
    }

    public int free() {
        return free.size();
    }

    public int total() {
        return total;
    }

    /** {@code n} blocks, or null (and nothing taken) when fewer are free. */
    public int[] allocate(int n) {
        if (n > free.size()) {
            return null;
        }
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = free.poll();
        }
        return out;
    }

    public void release(int[] blocks) {
        for (int b : blocks) {
            free.add(b);
        }
    }
}
