package io.longdoc.engine.cpu;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The threads a CPU forward pass runs on: the calling thread plus {@code size - 1} workers.
 *
 * <p>Why not a ForkJoinPool: decoding one token is about a hundred short parallel operations
 * (each matrix product, each attention) with a few microseconds of single-threaded work between
 * them. Pool workers park between operations, and waking a parked thread costs tens of
 * microseconds, so on the 110M benchmark shape a pool streamed weights at 10–11 GB/s where this
 * team reaches 20–21 GB/s on the same two cores. Workers here spin for {@link #SPIN_NANOS} after
 * each operation, which covers the gaps inside a forward pass, then sleep until the next one, so an
 * idle engine costs no CPU. A team larger than the machine's cores never spins: a spinning worker
 * would take the core the caller needs.
 *
 * <p>Work is handed out in ranges of items claimed from a shared counter, so a core that another
 * process takes for a while does not hold the others back. One operation at a time: calls from
 * several threads are serialised.
 */
final class WorkerTeam implements AutoCloseable {
    /** How long a worker keeps polling for the next operation before it sleeps. */
    static final long SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(300);

    /** The body of an operation: process items [from, to). */
    @FunctionalInterface
    interface Range {
        void run(int from, int to);
    }

    private final Worker[] workers;
    private final long spinNanos;
    private final AtomicInteger nextItem = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private volatile long generation;
    private volatile boolean closed;
    // The current operation; written before generation is bumped, so a worker that sees the new
    // generation sees these too.
    private Range body;
    private int items, grain;
    private volatile Throwable failure;

    private final class Worker extends Thread {
        volatile boolean sleeping;

        Worker(int index) {
            super("longdoc-cpu-" + index);
            setDaemon(true);
        }

        @Override
        public void run() {
            long seen = 0;
            while (true) {
                long g = awaitNext(seen);
                if (closed) {
                    return;
                }
                seen = g;
                try {
                    claimAndRun();
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    running.decrementAndGet();
                }
            }
        }

        private long awaitNext(long seen) {
            long spinUntil = System.nanoTime() + spinNanos;
            int polls = 0;
            while (true) {
                long g = generation;
                if (g != seen || closed) {
                    return g;
                }
                if ((++polls & 63) != 0 || System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                    continue;
                }
                // Announce the sleep, then look once more: the submitter bumps the generation before
                // it reads this flag, so one of the two always sees the other.
                sleeping = true;
                if (generation == seen && !closed) {
                    LockSupport.park(this);
                }
                sleeping = false;
                spinUntil = System.nanoTime() + spinNanos;
            }
        }
    }

    WorkerTeam(int size) {
        workers = new Worker[Math.max(0, size - 1)];
        spinNanos = size <= Runtime.getRuntime().availableProcessors() ? SPIN_NANOS : 0;
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    /** Threads that take part in an operation, the caller included. */
    int size() {
        return workers.length + 1;
    }

    /**
     * Runs {@code body} over items [0, count) on every thread of the team, in ranges of
     * {@code grain} items, and returns when all are done. An exception in any range is rethrown here.
     */
    synchronized void run(int count, int grain, Range body) {
        if (count <= 0) {
            return;
        }
        if (workers.length == 0 || count <= grain) {
            body.run(0, count);
            return;
        }
        if (closed) {
            throw new IllegalStateException("the CPU backend is closed");
        }
        this.body = body;
        this.items = count;
        this.grain = Math.max(1, grain);
        this.failure = null;
        nextItem.set(0);
        running.set(workers.length);
        generation = generation + 1;
        for (Worker w : workers) {
            if (w.sleeping) {
                LockSupport.unpark(w);
            }
        }
        Throwable own = null;
        try {
            claimAndRun();
        } catch (Throwable t) {
            own = t;
        }
        while (running.get() != 0) {
            if (spinNanos > 0) {
                Thread.onSpinWait();
            } else {
                Thread.yield(); // more threads than cores: let the workers have this one
            }
        }
        this.body = null;
        Throwable failed = own != null ? own : failure;
        if (failed instanceof RuntimeException e) {
            throw e;
        }
        if (failed instanceof Error e) {
            throw e;
        }
        if (failed != null) {
            throw new IllegalStateException(failed);
        }
    }

    private void claimAndRun() {
        Range b = body;
        int n = items, g = grain;
        while (true) {
            int from = nextItem.getAndAdd(g);
            if (from >= n) {
                return;
            }
            b.run(from, Math.min(n, from + g));
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) {
            LockSupport.unpark(w);
        }
    }
}
