package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WorkerTeamTest {
    /** Runs many operations of varied sizes and grains; every item must run exactly once in each. */
    private static Set<String> runMany(WorkerTeam team) throws InterruptedException {
        Set<String> threads = ConcurrentHashMap.newKeySet();
        for (int op = 0; op < 2000; op++) {
            int count = 1 + (op * 37) % 500;
            AtomicIntegerArray hits = new AtomicIntegerArray(count);
            team.run(count, 1 + op % 7, (from, to) -> {
                threads.add(Thread.currentThread().getName());
                for (int i = from; i < to; i++) {
                    hits.incrementAndGet(i);
                }
            });
            for (int i = 0; i < count; i++) {
                assertEquals(1, hits.get(i), "operation " + op + ", item " + i);
            }
            if (op % 500 == 0) {
                Thread.sleep(5); // long enough for the workers to go to sleep: they must wake for the next one
            }
        }
        return threads;
    }

    @Test
    void everyItemRunsExactlyOnceWithSpinningWorkers() throws Exception {
        try (WorkerTeam team = new WorkerTeam(2)) {
            Set<String> threads = runMany(team);
            assertTrue(threads.size() > 1, "work ran on the caller only: " + threads);
        }
    }

    @Test
    void everyItemRunsExactlyOnceWhenWorkersSleepBetweenOperations() throws Exception {
        // The path taken when the JVM's teams have more threads than the machine has cores.
        try (WorkerTeam team = new WorkerTeam(4, false)) {
            runMany(team);
        }
    }

    @Test
    void eachThreadStartsAtTheFrontOfItsOwnSliceAndTheCallerTakesOverAStalledWorkersRest() throws Exception {
        try (WorkerTeam team = new WorkerTeam(2)) {
            int count = 100, grain = 10;
            AtomicIntegerArray hits = new AtomicIntegerArray(count);
            Set<Integer> workerRanges = ConcurrentHashMap.newKeySet(), callerRanges = ConcurrentHashMap.newKeySet();
            CountDownLatch workerStarted = new CountDownLatch(1), callerDone = new CountDownLatch(1);
            team.run(count, grain, (from, to) -> {
                boolean worker = Thread.currentThread().getName().startsWith("longdoc-cpu-");
                (worker ? workerRanges : callerRanges).add(from);
                try {
                    if (worker) {
                        workerStarted.countDown();
                        callerDone.await(); // a worker kept off its core: it holds its first range
                    } else {
                        assertTrue(workerStarted.await(30, TimeUnit.SECONDS), "the worker never started");
                    }
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                for (int i = from; i < to; i++) {
                    hits.incrementAndGet(i);
                }
                if (!worker && callerRanges.size() == count / grain - 1) {
                    callerDone.countDown();
                }
            });
            for (int i = 0; i < count; i++) {
                assertEquals(1, hits.get(i), "item " + i);
            }
            // The worker's slice is the second half: it started at its front, and the caller, done
            // with the first half, took the rest of it from the back.
            assertEquals(Set.of(50), workerRanges);
            assertEquals(Set.of(0, 10, 20, 30, 40, 60, 70, 80, 90), callerRanges);
        }
    }

    @Test
    void aFailureOnAWorkerReachesTheCallerAndTheTeamGoesOn() {
        try (WorkerTeam team = new WorkerTeam(2)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> team.run(1000, 1, (from, to) -> {
                if (Thread.currentThread().getName().startsWith("longdoc-cpu-")) {
                    throw new IllegalStateException("failed on a worker");
                }
                try {
                    Thread.sleep(1); // the caller is slow, so the worker claims ranges
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                }
            }));
            assertEquals("failed on a worker", e.getMessage());
            AtomicIntegerArray hits = new AtomicIntegerArray(100);
            team.run(100, 3, (from, to) -> {
                for (int i = from; i < to; i++) {
                    hits.incrementAndGet(i);
                }
            });
            for (int i = 0; i < 100; i++) {
                assertEquals(1, hits.get(i));
            }
        }
    }

    @Test
    void anOperationCalledFromInsideAnotherRunsOnTheCallingThread() {
        try (WorkerTeam team = new WorkerTeam(2)) {
            AtomicIntegerArray hits = new AtomicIntegerArray(64 * 64);
            team.run(64, 1, (from, to) -> {
                for (int outer = from; outer < to; outer++) {
                    int base = outer * 64;
                    team.run(64, 4, (f, t) -> {
                        for (int i = f; i < t; i++) {
                            hits.incrementAndGet(base + i);
                        }
                    });
                }
            });
            for (int i = 0; i < 64 * 64; i++) {
                assertEquals(1, hits.get(i), "item " + i);
            }
        }
    }

    @Test
    void closeWaitsForTheOperationInProgressAndLaterCallsAreRefused() throws Exception {
        WorkerTeam team = new WorkerTeam(2);
        CountDownLatch started = new CountDownLatch(1);
        AtomicIntegerArray hits = new AtomicIntegerArray(200);
        Thread caller = new Thread(() -> team.run(200, 1, (from, to) -> {
            started.countDown();
            try {
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            hits.incrementAndGet(from);
        }));
        caller.start();
        assertTrue(started.await(10, TimeUnit.SECONDS));
        team.close();
        caller.join(20_000);
        assertTrue(!caller.isAlive(), "the operation in progress never finished");
        for (int i = 0; i < 200; i++) {
            assertEquals(1, hits.get(i), "item " + i);
        }
        assertThrows(IllegalStateException.class, () -> team.run(10, 1, (from, to) -> { }));
    }
}
