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

    /**
     * The distribution a token is drawn from, against Hugging Face's warpers (temperature, top-k,
     * top-p, softmax) ported to numpy step for step (test resource hf_warpers.py), on random logits:
     * every combination of temperature, top-k and top-p, and top-k with ties at the k-th value.
     */
    @Test
    void theDrawnDistributionIsHuggingFacesWarpers() throws Exception {
        io.longdoc.engine.tokenizer.SentencePieceReference.requireAvailable();   // the Debian python3, with numpy beside it
        java.util.Random random = new java.util.Random(31);
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        com.fasterxml.jackson.databind.node.ArrayNode cases = json.createArrayNode();
        java.util.List<Sampler> samplers = new java.util.ArrayList<>();
        java.util.List<float[]> logits = new java.util.ArrayList<>();
        for (float temperature : new float[] {0.5f, 1f, 1.7f}) {
            for (int topK : new int[] {0, 1, 5, 40}) {
                for (float topP : new float[] {1f, 0.9f, 0.5f, 0.1f}) {
                    for (boolean ties : new boolean[] {false, true}) {
                        if (ties && (topK == 0 || topP < 1f)) {
                            continue;   // ties only where top-k decides (at top-p's edge HF's order among equals is torch's choice)
                        }
                        float[] v = new float[50];
                        for (int i = 0; i < v.length; i++) {
                            v[i] = (float) (random.nextGaussian() * 2);
                        }
                        if (ties) {
                            float[] sorted = v.clone();
                            java.util.Arrays.sort(sorted);
                            float kth = sorted[v.length - topK];
                            v[random.nextInt(v.length)] = kth;   // one more value equal to the k-th largest
                        }
                        logits.add(v);
                        samplers.add(new Sampler(new SamplingParams(1, temperature, topK, topP, 1f, 0, false, null), v.length, new int[0]));
                        com.fasterxml.jackson.databind.node.ObjectNode c = cases.addObject();
                        c.set("logits", json.valueToTree(v));
                        c.put("temperature", (double) temperature).put("top_k", topK).put("top_p", (double) topP);
                    }
                }
            }
        }
        java.nio.file.Path script = java.nio.file.Files.createTempFile("hf_warpers", ".py");
        try (java.io.InputStream in = SamplerTest.class.getResourceAsStream("/hf_warpers.py")) {
            java.nio.file.Files.copy(in, script, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Process p = new ProcessBuilder("/usr/bin/python3", script.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        p.getOutputStream().write(json.writeValueAsBytes(cases));
        p.getOutputStream().close();
        byte[] printed = p.getInputStream().readAllBytes();   // all of it: a parser that stops at the closing bracket would break the pipe
        assertTrue(p.waitFor(1, java.util.concurrent.TimeUnit.MINUTES) && p.exitValue() == 0, "hf_warpers.py failed");
        double[][] expected = json.readValue(printed, double[][].class);
        java.nio.file.Files.delete(script);
        assertEquals(cases.size(), expected.length);
        for (int c = 0; c < expected.length; c++) {
            double[] actual = samplers.get(c).distribution(logits.get(c).clone());
            com.fasterxml.jackson.databind.JsonNode k = cases.get(c);
            String what = "case " + c + " (temperature " + k.get("temperature") + ", top-k " + k.get("top_k") + ", top-p " + k.get("top_p") + ")";
            for (int i = 0; i < actual.length; i++) {
                assertEquals(expected[c][i], actual[i], 1e-6, what + ", token " + i);
                assertEquals(expected[c][i] == 0, actual[i] == 0, what + ": token " + i + " kept by one and not the other");
            }
        }
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
