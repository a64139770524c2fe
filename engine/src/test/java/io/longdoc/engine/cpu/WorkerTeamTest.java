package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class WorkerTeamTest {
    @Test
    void everyItemRunsExactlyOnceAcrossManyOperations() throws Exception {
        try (WorkerTeam team = new WorkerTeam(3)) {
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
                int[] seen = new int[count];
                int[] once = new int[count];
                for (int i = 0; i < count; i++) {
                    seen[i] = hits.get(i);
                    once[i] = 1;
                }
                assertArrayEquals(once, seen, "operation " + op);
                if (op % 500 == 0) {
                    Thread.sleep(5); // long enough for the workers to go to sleep: they must wake for the next one
                }
            }
            assertTrue(threads.size() > 1, "work ran on the caller only: " + threads);
        }
    }

    @Test
    void aFailureInAWorkerRangeReachesTheCaller() {
        try (WorkerTeam team = new WorkerTeam(2)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> team.run(1000, 1, (from, to) -> {
                if (from == 999) {
                    throw new IllegalStateException("range " + from);
                }
            }));
            assertEquals("range 999", e.getMessage());
            // The team still works after a failed operation.
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
}
