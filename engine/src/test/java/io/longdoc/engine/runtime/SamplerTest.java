package io.longdoc.engine.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Sampling semantics against direct computation on small logit vectors. */
class SamplerTest {
    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeScoresOfSeenIds() {
        // Greedy: logits {2.0, 2.1, -1, -0.5}; id 1 was in the prompt, so 2.1 / 1.1 < 2.0 and id 0 wins.
        Sampler s = new Sampler(new SamplingParams(5, 0f, 0, 1f, 1.1f, 0, false, null), 4, new int[] {1, 3});
        float[] logits = {2.0f, 2.1f, -1f, -0.5f};
        assertEquals(0, s.next(logits));
        assertEquals(2.1f / 1.1f, logits[1], 1e-6f);
        assertEquals(-0.5f * 1.1f, logits[3], 1e-6f);
        assertEquals(-1f, logits[2]);
        // The chosen id now counts as seen too.
        float[] again = {2.0f, 1.0f, 0f, 0f};
        s.next(again);
        assertEquals(2.0f / 1.1f, again[0], 1e-6f);
    }

    @Test
    void topKAndTopPRestrictTheDraw() {
        float[] logits = {5f, 4.9f, 4.8f, 0f, -3f};
        for (long seed = 0; seed < 200; seed++) {
            int k = new Sampler(new SamplingParams(1, 1f, 2, 1f, 1f, seed, false, null), 5, new int[0]).next(logits.clone());
            assertTrue(k == 0 || k == 1, "top-k 2 drew " + k);
            int p = new Sampler(new SamplingParams(1, 1f, 0, 0.3f, 1f, seed, false, null), 5, new int[0]).next(logits.clone());
            assertEquals(0, p, "top-p 0.3 keeps only the most likely token (p = 0.36)");
        }
    }

    @Test
    void temperatureDrawsFollowTheSoftmax() {
        float[] logits = {0f, (float) Math.log(3)}; // probabilities 1/4, 3/4
        int ones = 0, n = 20_000;
        for (long seed = 0; seed < n; seed++) {
            ones += new Sampler(new SamplingParams(1, 1f, 0, 1f, 1f, seed, false, null), 2, new int[0]).next(logits.clone());
        }
        assertEquals(0.75, (double) ones / n, 0.02);
    }

    @Test
    void drawsAreSplittableRandomsStream() {
        for (long seed : new long[] {0, 1, -7, Long.MAX_VALUE, 0x123456789abcdefL}) {
            java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
            for (int n = 0; n < 100; n++) {
                assertEquals(r.nextDouble(), Sampler.uniform(seed, n), "seed " + seed + " draw " + n);
            }
        }
    }
}
