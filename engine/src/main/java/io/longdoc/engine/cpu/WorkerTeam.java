package io.longdoc.engine.cpu;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * The threads a CPU forward pass runs on: the calling thread plus {@code size - 1} workers.
 *
 * <p>Why not a ForkJoinPool: decoding one token is about a hundred short parallel operations
 * (each matrix product, each attention) with a few microseconds of single-threaded work between
 * them. Pool workers park between operations, and waking a parked thread costs tens of
 * microseconds, so on the 110M benchmark shape a pool streamed weights at 10–11 GB/s where this
 * team reaches 20–24 GB/s on the same two cores. Workers here spin for {@link #SPIN_NANOS} after
 * each operation, which covers the gaps inside a forward pass, then sleep until the next one, so an
 * idle engine costs no CPU. While the teams of this JVM have more threads than the machine has
 * cores, workers do not spin: a spinning worker would take a core another thread needs.
 *
 * <p>Work is handed out in ranges of items claimed from the operation's counter, and an operation
 * is over when all its items are done, not when every worker has checked in: a worker that another
 * process keeps off its core just finds nothing left to claim. One operation at a time: calls from
 * several threads are serialised.
 */
final class WorkerTeam implements AutoCloseable {
    /** How long a worker keeps polling for the next operation before it sleeps. */
    static final long SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(300);
    /** Worker and caller threads of all open teams in this JVM, against the cores, to decide on spinning. */
    private static final AtomicInteger THREADS_IN_TEAMS = new AtomicInteger();

    /** The body of an operation: process items [from, to). */
    @FunctionalInterface
    interface Range {
        void run(int from, int to);
    }

    /**
     * One call of {@link #run}: its items, who claimed which, how many are done, what failed.
     *
     * <p>The items are cut into one contiguous slice per thread, and each thread claims ranges from
     * the front of its own slice, so it streams one run of memory, as a static OpenMP loop does. A
     * thread whose slice is used up claims ranges from the back of the slice with the most left: a
     * thread another process keeps off its core delays the operation by at most one range. Measured
     * on two cores streaming 110M-model rows (768 per operation): ranges handed out from one shared
     * counter interleaved the threads' reads and ran at 40 GB/s; contiguous halves at 47.
     */
    private static final class Operation {
        // Cleared when the operation is over, so a finished step's arrays are not kept alive by a
        // sleeping worker's reference; no range can be claimed by then, so nothing reads it.
        Range body;
        final int items, grain;
        /** Per slice: (next unclaimed item << 32) | end of the unclaimed items, changed by compare-and-set. */
        final AtomicLongArray slices;
        final AtomicInteger doneItems = new AtomicInteger();
        volatile Throwable failure;

        Operation(Range body, int items, int grain, int threads) {
            this.body = body;
            this.items = items;
            this.grain = grain;
            this.slices = new AtomicLongArray(threads);
            for (int k = 0; k < threads; k++) {
                slices.set(k, pack((int) ((long) items * k / threads), (int) ((long) items * (k + 1) / threads)));
            }
        }

        private static long pack(int next, int end) {
            return (long) next << 32 | end;
        }

        /** Claims and runs ranges, its own slice's first, until none are left. A failed range still counts as done. */
        void work(int self) {
            while (true) {
                long range = claimFront(self);
                if (range < 0) {
                    range = claimBackOfLargest();
                    if (range < 0) {
                        return;
                    }
                }
                int from = (int) (range >>> 32), to = (int) range;
                try {
                    body.run(from, to);   // read after the claim: set while any range is unclaimed
                } catch (Throwable t) {
                    if (failure == null) {
                        failure = t;
                    } else if (failure != t) {
                        failure.addSuppressed(t);
                    }
                } finally {
                    doneItems.addAndGet(to - from);
                }
            }
        }

        /** The next grain of slice k as (from << 32) | to, or −1 when it has none left. */
        private long claimFront(int k) {
            while (true) {
                long state = slices.get(k);
                int next = (int) (state >>> 32), end = (int) state;
                if (next >= end) {
                    return -1;
                }
                int to = Math.min(end, next + grain);
                if (slices.compareAndSet(k, state, pack(to, end))) {
                    return pack(next, to);
                }
            }
        }

        /** The last grain of the slice with the most items left, as (from << 32) | to, or −1 when all are claimed. */
        private long claimBackOfLargest() {
            while (true) {
                int largest = -1, most = 0;
                long state = 0;
                for (int k = 0; k < slices.length(); k++) {
                    long slice = slices.get(k);
                    int left = (int) slice - (int) (slice >>> 32);
                    if (left > most) {
                        most = left;
                        largest = k;
                        state = slice;
                    }
                }
                if (largest < 0) {
                    return -1;
                }
                int next = (int) (state >>> 32), end = (int) state;
                int from = Math.max(next, end - grain);
                if (slices.compareAndSet(largest, state, pack(next, from))) {
                    return pack(from, end);
                }
            }
        }
    }

    private final Worker[] workers;
    private final boolean maySpin;
    private final int cores = Runtime.getRuntime().availableProcessors();
    // The latest operation; workers compare it with the last one they saw.
    private volatile Operation current;
    private volatile boolean closed;
    private Thread runningCaller;

    private final class Worker extends Thread {
        volatile boolean sleeping;
        /** Its slice of each operation; the calling thread has slice 0. */
        final int index;

        Worker(int index) {
            // No inherited thread-locals: the creating thread may be a Spark task with its own.
            super(null, null, "longdoc-cpu-" + index, 0, false);
            this.index = index;
            setDaemon(true);
            setContextClassLoader(WorkerTeam.class.getClassLoader());
        }

        WorkerTeam team() {
            return WorkerTeam.this;
        }

        @Override
        public void run() {
            Operation seen = null;
            while (true) {
                Operation op = awaitNext(seen);
                if (op != seen) {
                    seen = op;
                    op.work(index); // even when closing: an operation handed out is finished
                } else if (closed) {
                    return;
                }
            }
        }

        /** Returns the next operation, or the last one seen once the team is closed. */
        private Operation awaitNext(Operation seen) {
            long spinUntil = System.nanoTime() + spinNanos();
            int polls = 0;
            while (true) {
                Operation op = current;
                if (op != seen || closed) {
                    return op;
                }
                if ((++polls & 63) != 0 || System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                    continue;
                }
                // Announce the sleep, then look once more: run() publishes the operation before it
                // reads this flag, so one of the two always sees the other.
                sleeping = true;
                if (current == seen && !closed) {
                    LockSupport.park(this);
                }
                sleeping = false;
                spinUntil = System.nanoTime() + spinNanos();
            }
        }
    }

    WorkerTeam(int size) {
        this(size, true);
    }

    /** {@code maySpin = false} makes workers sleep as soon as an operation ends (tests use it for the oversubscribed path). */
    WorkerTeam(int size, boolean maySpin) {
        this.maySpin = maySpin;
        workers = new Worker[Math.max(0, size - 1)];
        THREADS_IN_TEAMS.addAndGet(workers.length + 1);
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    private long spinNanos() {
        return maySpin && THREADS_IN_TEAMS.get() <= cores ? SPIN_NANOS : 0;
    }

    /** Threads that take part in an operation, the caller included. */
    int size() {
        return workers.length + 1;
    }

    /**
     * Runs {@code body} over items [0, count) on every thread of the team, in ranges of
     * {@code grain} items, and returns when all are done. An exception in any range is rethrown
     * here (others are attached to it as suppressed). Called from inside an operation of this
     * team, it runs the items on the calling thread.
     */
    void run(int count, int grain, Range body) {
        if (closed) {
            throw new IllegalStateException("the CPU backend is closed");
        }
        Thread self = Thread.currentThread();
        boolean nested = (self instanceof Worker w && w.team() == this) || runningCaller == self;
        if (count <= 0 || workers.length == 0 || count <= grain || nested) {
            if (count > 0) {
                body.run(0, count);
            }
            return;
        }
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("the CPU backend is closed");
            }
            runningCaller = self;
            try {
                runShared(new Operation(body, count, Math.max(1, grain), size()));
            } finally {
                runningCaller = null;
            }
        }
    }

    private void runShared(Operation op) {
        current = op;
        for (Worker w : workers) {
            if (w.sleeping) {
                LockSupport.unpark(w);
            }
        }
        op.work(0);
        boolean spin = spinNanos() > 0;
        while (op.doneItems.get() < op.items) {
            if (spin) {
                Thread.onSpinWait();
            } else {
                Thread.yield(); // more threads than cores: let the workers finishing this have the core
            }
        }
        op.body = null;
        Throwable failed = op.failure;
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

    /** Waits for the operation in progress, if any, then stops the workers. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        THREADS_IN_TEAMS.addAndGet(-(workers.length + 1));
        for (Worker w : workers) {
            LockSupport.unpark(w);
        }
    }
}
