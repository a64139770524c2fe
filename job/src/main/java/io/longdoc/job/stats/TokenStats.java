package io.longdoc.job.stats;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;

/**
 * The numbers of the token-length report, computed from the distribution of token counts
 * (how many documents have each count). That distribution is all the driver ever holds: its size
 * is bounded by the longest document, not by the number of rows, and it gives exact percentiles.
 */
public final class TokenStats {
    public static final int[] PERCENTILES = {50, 90, 95, 99};

    /** How the report's truncation budget is set. */
    public record Budget(int contextTokens, int maxNewTokens, int templateTokens) {
        public int promptBudget() {
            return contextTokens - maxNewTokens - templateTokens;
        }
    }

    /** One histogram bucket [lo, hi); hi is null for the last, open bucket. */
    public record Bucket(long lo, Long hi, long rows, double share) {
    }

    public final long rows, nullRows, emptyRows, countedRows;
    public final long total;
    public final Integer min, max;
    public final Double mean;
    public final Map<Integer, Integer> percentiles = new LinkedHashMap<>();
    public final List<Bucket> histogram = new ArrayList<>();
    public final Budget budget;
    public final long rowsOver;
    public final double shareOver;
    public final long tokensDropped;

    /**
     * @param distribution token count → number of documents with that count (null texts excluded)
     * @param buckets increasing lower edges, the first 0
     */
    public TokenStats(long rows, long nullRows, long emptyRows, NavigableMap<Integer, Long> distribution, long[] buckets, Budget budget) {
        validateBuckets(buckets);
        if (budget.promptBudget() < 0) {
            throw new IllegalArgumentException("prompt budget is negative: context " + budget.contextTokens() + " − max_new_tokens "
                    + budget.maxNewTokens() + " − template " + budget.templateTokens() + " = " + budget.promptBudget());
        }
        this.rows = rows;
        this.nullRows = nullRows;
        this.emptyRows = emptyRows;
        this.budget = budget;
        long n = 0, sum = 0;
        for (Map.Entry<Integer, Long> e : distribution.entrySet()) {
            if (e.getKey() < 0 || e.getValue() <= 0) {
                throw new IllegalArgumentException("bad distribution entry " + e);
            }
            n += e.getValue();
            sum += (long) e.getKey() * e.getValue();
        }
        this.countedRows = n;
        this.total = sum;
        this.min = n == 0 ? null : distribution.firstKey();
        this.max = n == 0 ? null : distribution.lastKey();
        this.mean = n == 0 ? null : (double) sum / n;
        for (int p : PERCENTILES) {
            percentiles.put(p, n == 0 ? null : nearestRank(distribution, n, p));
        }
        for (int b = 0; b < buckets.length; b++) {
            long lo = buckets[b];
            Long hi = b + 1 < buckets.length ? buckets[b + 1] : null;
            long inBucket = 0;
            for (Map.Entry<Integer, Long> e : distribution.entrySet()) {
                if (e.getKey() >= lo && (hi == null || e.getKey() < hi)) {
                    inBucket += e.getValue();
                }
            }
            histogram.add(new Bucket(lo, hi, inBucket, n == 0 ? 0.0 : (double) inBucket / n));
        }
        int b = budget.promptBudget();
        long keptWhenOver = 2L * (b / 2);
        long over = 0, dropped = 0;
        for (Map.Entry<Integer, Long> e : distribution.tailMap(b, false).entrySet()) {
            over += e.getValue();
            dropped += (e.getKey() - keptWhenOver) * e.getValue();
        }
        this.rowsOver = over;
        this.shareOver = n == 0 ? 0.0 : (double) over / n;
        this.tokensDropped = dropped;
    }

    /** The smallest count c such that at least p% of the counted rows have ≤ c tokens. */
    static int nearestRank(NavigableMap<Integer, Long> distribution, long n, int p) {
        // rank = ceil(p * n / 100), in exact integer arithmetic.
        long rank = Math.max(1, (p * n + 99) / 100);
        long seen = 0;
        for (Map.Entry<Integer, Long> e : distribution.entrySet()) {
            seen += e.getValue();
            if (seen >= rank) {
                return e.getKey();
            }
        }
        throw new IllegalStateException("unreachable: rank " + rank + " > " + n);
    }

    public static void validateBuckets(long[] buckets) {
        if (buckets.length == 0 || buckets[0] != 0) {
            throw new IllegalArgumentException("buckets must start at 0, e.g. 0,4096,8192,16384,32768");
        }
        for (int i = 1; i < buckets.length; i++) {
            if (buckets[i] <= buckets[i - 1]) {
                throw new IllegalArgumentException("buckets must be strictly increasing, got " + buckets[i - 1] + " then " + buckets[i]);
            }
        }
    }
}
