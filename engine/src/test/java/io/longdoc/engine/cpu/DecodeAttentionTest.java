package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Decode tokens deep in a context, whose positions are shared out between threads in parts and
 * the parts' softmax sums combined, give the logits a prefill of the same tokens gives (the tiled
 * prompt attention, a separate path).
 */
class DecodeAttentionTest {
    @Test
    void decodeInPartsGivesThePrefillLogits() {
        Path dir = Shared.require("models/stories260k");
        ModelConfig c = ModelConfig.load(dir);
        LlamaWeights w = new LlamaWeights(c, Weights.open(dir));
        // Decode from position 300: two to three parts of 128 positions or more.
        int[] tokens = DecodeChecks.tokens(500, 37, 11, c.vocabSize());
        int blocks = (tokens.length + 15) / 16;
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            table[b] = blocks - 1 - b;   // blocks out of order, as a pool hands them out
        }
        for (VectorMath math : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            try (CpuBackend prefill = new CpuBackend(w, blocks, 16, 2, math);
                 CpuBackend decode = new CpuBackend(w, blocks, 16, 2, math)) {
                float[][] want = DecodeChecks.prefillLogits(prefill, table, tokens);
                double worst = DecodeChecks.worstDecodeError(decode, table, tokens, 300, want);
                assertTrue(worst < 1e-5, math.name() + ": decode is " + worst + " of the largest logit from the prefill's logits");
            }
        }
    }
}
