package io.longdoc.engine.runtime;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks one token from logits, per request: repetition penalty, then greedy argmax, or
 * temperature → top-k → top-p → a draw from the request's own random stream (so the result
 * does not depend on what else is in the batch).
 */
public final class Sampler {
    private final SamplingParams p;
    private final SplittableRandom random;
    private final boolean[] seen;   // ids already in the sequence, for the repetition penalty

    public Sampler(SamplingParams params, int vocabSize, int[] prompt) {
        this.p = params;
        this.random = new SplittableRandom(params.seed());
        this.seen = params.repetitionPenalty() != 1f ? new boolean[vocabSize] : null;
        if (seen != null) {
            for (int id : prompt) {
                seen[id] = true;
            }
        }
    }

    /** Chooses the next token; {@code logits} may be modified. */
    public int next(float[] logits) {
        if (seen != null) {
            float penalty = p.repetitionPenalty();
            for (int id = 0; id < logits.length; id++) {
                if (seen[id]) {
                    logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
                }
            }
        }
        int chosen = p.isGreedy() ? argmax(logits) : draw(logits);
        if (seen != null) {
            seen[chosen] = true;
        }
        return chosen;
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
        double u = random.nextDouble();
        double acc = 0;
        int last = 0;
        for (int i = 0; i < n; i++) {
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

    private static float kthLargest(float[] v, int k) {
        float[] sorted = v.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length - k];
    }
}
