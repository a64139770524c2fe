package io.longdoc.job.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.NavigableMap;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The report's numbers from the count distribution equal a direct computation over every row. */
class TokenStatsTest {
    private static final long[] BUCKETS = {0, 4096, 8192, 16384, 32768};

    private static NavigableMap<Integer, Long> distribution(int[] counts) {
        NavigableMap<Integer, Long> d = new TreeMap<>();
        for (int c : counts) {
            d.merge(c, 1L, Long::sum);
        }
        return d;
    }

    @Test
    void matchesDirectComputationOnRandomCorpora() {
        Random random = new Random(7);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + random.nextInt(trial < 20 ? 5 : 3000);
            int[] counts = new int[n];
            for (int i = 0; i < n; i++) {
                counts[i] = random.nextInt(4) == 0 ? random.nextInt(70_000) : random.nextInt(9000);
            }
            int context = 1 + random.nextInt(40_000);
            int maxNew = random.nextInt(Math.min(context, 600));
            TokenStats.Budget budget = new TokenStats.Budget(context, maxNew, 0);
            TokenStats s = new TokenStats(n + 3, 3, 0, distribution(counts), BUCKETS, budget);

            int[] sorted = counts.clone();
            Arrays.sort(sorted);
            assertEquals(n, s.countedRows);
            assertEquals(Arrays.stream(counts).asLongStream().sum(), s.total);
            assertEquals(sorted[0], s.min);
            assertEquals(sorted[n - 1], s.max);
            assertEquals(Arrays.stream(counts).average().orElseThrow(), s.mean, 1e-9);
            for (int p : TokenStats.PERCENTILES) {
                // Nearest rank, by definition: the smallest c with at least p% of rows <= c.
                int expected = -1;
                for (int c : sorted) {
                    long atMost = Arrays.stream(sorted).filter(x -> x <= c).count();
                    if (atMost * 100 >= (long) p * n) {
                        expected = c;
                        break;
                    }
                }
                assertEquals(expected, s.percentiles.get(p), "p" + p + " of " + n);
            }
            for (int b = 0; b < BUCKETS.length; b++) {
                long lo = BUCKETS[b], hi = b + 1 < BUCKETS.length ? BUCKETS[b + 1] : Long.MAX_VALUE;
                long rows = Arrays.stream(counts).filter(c -> c >= lo && c < hi).count();
                assertEquals(rows, s.histogram.get(b).rows());
                assertEquals((double) rows / n, s.histogram.get(b).share(), 1e-12);
            }
            int promptBudget = context - maxNew;
            long over = Arrays.stream(counts).filter(c -> c > promptBudget).count();
            long dropped = Arrays.stream(counts).filter(c -> c > promptBudget).mapToLong(c -> c - 2L * (promptBudget / 2)).sum();
            assertEquals(over, s.rowsOver);
            assertEquals((double) over / n, s.shareOver, 1e-12);
            assertEquals(dropped, s.tokensDropped);
        }
    }

    @Test
    void allNullCorpusHasNoTokenStatistics() {
        TokenStats s = new TokenStats(4, 4, 0, new TreeMap<>(), BUCKETS, new TokenStats.Budget(100, 10, 0));
        assertEquals(0, s.countedRows);
        assertNull(s.min);
        assertNull(s.percentiles.get(50));
        assertEquals(0.0, s.shareOver);
    }

    @Test
    void badBucketsAndBudgetsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> TokenStats.validateBuckets(new long[] {1, 5}));
        assertThrows(IllegalArgumentException.class, () -> TokenStats.validateBuckets(new long[] {0, 5, 5}));
        assertThrows(IllegalArgumentException.class,
                () -> new TokenStats(1, 0, 0, distribution(new int[] {3}), BUCKETS, new TokenStats.Budget(10, 8, 3)));
    }
}
