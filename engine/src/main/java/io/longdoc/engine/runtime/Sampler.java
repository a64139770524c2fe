package io.longdoc.engine.runtime;

import java.util.Arrays;

/**
 * Picks one token from logits, per request: repetition penalty, then greedy argmax, or
 * temperature → top-k → top-p → a draw from the request's own random stream (so the result
 * does not depend on what else is in the batch). The stream is SplittableRandom's: draw n of a
 * request is {@link #uniform}(seed, n), a pure function, so the GPU sampler draws the same numbers.
 */
public final class Sampler {
    private static final long GOLDEN_GAMMA = 0x9e3779b97f4a7c15L;
    private final SamplingParams p;
    private final int[] seenWords;   // bit set of ids already in the sequence, for the repetition penalty
    private long draws;

    public Sampler(SamplingParams params, int vocabSize, int[] prompt) {
        this.p = params;
        this.seenWords = params.repetitionPenalty() != 1f ? new int[(vocabSize + 31) / 32] : null;
        if (seenWords != null) {
            for (int id : prompt) {
                seenWords[id >>> 5] |= 1 << (id & 31);
            }
        }
    }

    public SamplingParams params() {
        return p;
    }

    /** The ids seen so far as a bit set (32 ids per int, id i at bit i % 32 of word i / 32), or null without a repetition penalty. */
    public int[] seenWords() {
        return seenWords;
    }

    /** Random numbers drawn so far (the index of the next one). */
    public long draws() {
        return draws;
    }

    private boolean seen(int id) {
        return (seenWords[id >>> 5] & (1 << (id & 31))) != 0;
    }

    /** Chooses the next token; {@code logits} may be modified. */
    public int next(float[] logits) {
        if (seenWords != null) {
            float penalty = p.repetitionPenalty();
            for (int id = 0; id < logits.length; id++) {
                if (seen(id)) {
                    logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
                }
            }
        }
        int chosen = p.isGreedy() ? argmax(logits) : draw(logits);
        accept(chosen);
        return chosen;
    }

    /** Records a token chosen elsewhere (the GPU sampler) exactly as {@link #next} would have. */
    public void accept(int chosen) {
        if (seenWords != null) {
            seenWords[chosen >>> 5] |= 1 << (chosen & 31);
        }
        if (!p.isGreedy()) {
            draws++;
        }
    }

    /** Draw n (0-based) of the stream of {@code new SplittableRandom(seed)}: its n+1-th nextDouble(). */
    public static double uniform(long seed, long n) {
        long z = seed + (n + 1) * GOLDEN_GAMMA;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        z = z ^ (z >>> 31);
        return (z >>> 11) * 0x1.0p-53;
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private int draw(float[] logits) {
        double[] prob = distribution(logits);
        double u = uniform(p.seed(), draws);
        double acc = 0;
        int last = 0;
        for (int i = 0; i < prob.length; i++) {
            if (prob[i] > 0) {
                acc += prob[i];
                last = i;
                if (u < acc) {
                    return i;
                }
            }
        }
        return last;
    }

    /**
     * The probabilities a sampled token is drawn from (after any repetition penalty): logits /
     * temperature, top-k (ties with the k-th kept), softmax, then top-p (a token stays when the
     * tokens more likely than it hold less than p), renormalised.
     */
    double[] distribution(float[] logits) {
        int n = logits.length;
        Integer[] order = null;
        float[] scaled = new float[n];
        for (int i = 0; i < n; i++) {
            scaled[i] = logits[i] / p.temperature();
        }
        // top-k: keep the k largest.
        boolean[] keep = new boolean[n];
        Arrays.fill(keep, true);
        if (p.topK() > 0 && p.topK() < n) {
            float kth = kthLargest(scaled, p.topK());
            for (int i = 0; i < n; i++) {
                keep[i] = scaled[i] >= kth;
            }
        }
        // Softmax over what is kept.
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            if (keep[i]) {
                max = Math.max(max, scaled[i]);
            }
        }
        double[] prob = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            if (keep[i]) {
                prob[i] = Math.exp(scaled[i] - max);
                sum += prob[i];
            }
        }
        for (int i = 0; i < n; i++) {
            prob[i] /= sum;
        }
        // top-p: the smallest set of most likely tokens whose mass reaches p (at least one).
        if (p.topP() < 1f) {
            order = new Integer[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            final double[] pr = prob;
            Arrays.sort(order, (a, b) -> Double.compare(pr[b], pr[a]));
            double cumulative = 0;
            int cut = n;
            for (int r = 0; r < n; r++) {
                cumulative += prob[order[r]];
                if (cumulative >= p.topP()) {
                    cut = r + 1;
                    break;
                }
            }
            double kept = 0;
            for (int r = 0; r < n; r++) {
                if (r >= cut) {
                    prob[order[r]] = 0;
                } else {
                    kept += prob[order[r]];
                }
            }
            for (int i = 0; i < n; i++) {
                prob[i] /= kept;
            }
        }
        return prob;
    }

    private static float kthLargest(float[] v, int k) {
        float[] sorted = v.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length - k];
    }
}
