package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.runtime.Chunk;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import java.util.List;
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
        int total = 70, prompt = 21;
        int[] tokens = new int[total], all = new int[total];
        for (int i = 0; i < total; i++) {
            tokens[i] = (i * 53 + 7) % c.vocabSize();
            all[i] = i;
        }
        int[] table = {0, 1, 2, 3, 4};
        try (CpuBackend bf16 = new CpuBackend(w, 5, 16, 2, VectorMath.get(), true);
             CpuBackend f32 = new CpuBackend(w, 5, 16, 2, VectorMath.get())) {
            float[][] prefilled = bf16.forward(List.of(new Chunk(table, 0, tokens, all, total)));
            for (CpuBackend b : new CpuBackend[] {bf16, f32}) {
                b.forward(List.of(new Chunk(table, 0, java.util.Arrays.copyOf(tokens, prompt), new int[] {prompt - 1}, prompt)));
            }
            double worst = 0, fromF32 = 0;
            for (int pos = prompt; pos < total; pos++) {
                Chunk step = new Chunk(table, pos, new int[] {tokens[pos]}, new int[] {0}, pos + 1);
                float[] got = bf16.forward(List.of(step))[0], exact = f32.forward(List.of(step))[0];
                float largest = 0;
                for (float v : prefilled[pos]) {
                    largest = Math.max(largest, Math.abs(v));
                }
                for (int v = 0; v < got.length; v++) {
                    worst = Math.max(worst, Math.abs(got[v] - prefilled[pos][v]) / largest);
                    fromF32 = Math.max(fromF32, Math.abs(exact[v] - prefilled[pos][v]) / largest);
                }
            }
            assertTrue(worst < 1e-3, "decode over a BF16 cache is " + worst + " of the largest logit from the prefill's logits");
            // Measured 1.3e-4 and 2.2e-3: the decode steps really read BF16 values.
            assertTrue(fromF32 > 1e-3, "the FP32 cache's decode is only " + fromF32 + " from the BF16 prefill");
        }
    }
}
