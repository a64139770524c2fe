package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A BF16 KV cache read by decode steps gives the logits a prefill over the same cache gives: the
 * decode attention kernels and the prefill ones agree on BF16 keys and values. (Both against the
 * float64 reference: RandomModelParityTest.)
 */
class Bf16CacheTest {
    @Test
    void decodeStepsOverABf16CacheGiveThePrefillLogits() {
        Path dir = Shared.require("models/index-tiny-random");
        ModelConfig c = ModelConfig.load(dir);
        LlamaWeights w = new LlamaWeights(c, Weights.open(dir));
        int[] tokens = DecodeChecks.tokens(70, 53, 7, c.vocabSize());
        int[] table = {0, 1, 2, 3, 4};
        try (CpuBackend bf16Prefill = new CpuBackend(w, 5, 16, 2, VectorMath.get(), true);
             CpuBackend bf16 = new CpuBackend(w, 5, 16, 2, VectorMath.get(), true);
             CpuBackend f32 = new CpuBackend(w, 5, 16, 2, VectorMath.get())) {
            float[][] prefilled = DecodeChecks.prefillLogits(bf16Prefill, table, tokens);
            double worst = DecodeChecks.worstDecodeError(bf16, table, tokens, 21, prefilled);
            double fromF32 = DecodeChecks.worstDecodeError(f32, table, tokens, 21, prefilled);
            assertTrue(worst < 1e-3, "decode over a BF16 cache is " + worst + " of the largest logit from the prefill's logits");
            // Measured 1.3e-4 and 2.2e-3: the decode steps really read BF16 values.
            assertTrue(fromF32 > 1e-3, "the FP32 cache's decode is only " + fromF32 + " from the BF16 prefill");
        }
    }
}
