package io.longdoc.engine.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The Index architecture (norm_head, rope_ratio 32, BF16) against the float64 reference in reference.json. */
public class IndexTinyRandomTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void configReadsTheIndexSpecifics() {
        ModelConfig c = ModelConfig.load(Shared.require("models/index-tiny-random"));
        assertTrue(c.isIndex());
        assertTrue(c.normHead());
        assertEquals(320000.0, c.ropeBase());
    }

    @Test
    void greedyTokensEqualTheReference() throws Exception {
        Path model = Shared.require("models/index-tiny-random");
        JsonNode ref = JSON.readTree(model.resolve("reference.json").toFile()).get("greedy");
        int[] prompt = JSON.treeToValue(ref.get("prompt_ids"), int[].class);
        int[] expected = JSON.treeToValue(ref.get("new_tokens"), int[].class);
        try (Engine engine = Engine.load(model, EngineSettings.defaults())) {
            GenerationResult r = engine.submit(prompt, SamplingParams.greedy(expected.length).withIgnoreEos(true)).get();
            assertArrayEquals(expected, r.outputIds());
        }
    }

    @Test
    void logitsEqualTheReferenceWithinTolerance() throws Exception {
        assertLogitsEqualTheReference(Shared.require("models/index-tiny-random"));
    }

    /**
     * The model in {@code dir} (index-tiny-random's weights, in whatever layout) scores
     * index-tiny-random's reference ids to its float64 reference logits within 1e-3 of the largest.
     */
    public static void assertLogitsEqualTheReference(Path dir) throws Exception {
        JsonNode ref = JSON.readTree(Shared.require("models/index-tiny-random").resolve("reference.json").toFile()).get("logits");
        int[] ids = JSON.treeToValue(ref.get("input_ids"), int[].class);
        int[] positions = JSON.treeToValue(ref.get("positions_checked"), int[].class);
        try (Engine engine = Engine.load(dir, EngineSettings.defaults())) {
            float[][] logits = engine.score(ids, positions);
            for (int i = 0; i < positions.length; i++) {
                double[] expected = JSON.treeToValue(ref.get("logits_at").get(String.valueOf(positions[i])), double[].class);
                assertClose(expected, logits[i], 1e-3, dir + ", position " + positions[i]);
            }
        }
    }

    /** |actual − expected| ≤ tol · max|expected| for every entry. */
    static void assertClose(double[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double scale = 0;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        double worst = 0;
        for (int j = 0; j < expected.length; j++) {
            worst = Math.max(worst, Math.abs(actual[j] - expected[j]) / scale);
        }
        assertTrue(worst <= tol, what + ": max error " + worst + " of the largest logit (tolerance " + tol + ")");
    }
}
