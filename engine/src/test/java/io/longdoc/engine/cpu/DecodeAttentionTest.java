package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.runtime.Chunk;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
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
        int total = 500, prompt = 300;   // decode from position 300: two to three parts of 128 positions or more
        int[] tokens = new int[total], all = new int[total];
        for (int i = 0; i < total; i++) {
            tokens[i] = (i * 37 + 11) % c.vocabSize();
            all[i] = i;
        }
        int blocks = (total + 15) / 16;
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            table[b] = blocks - 1 - b;   // blocks out of order, as a pool hands them out
        }
        for (VectorMath math : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            try (CpuBackend prefill = new CpuBackend(w, blocks, 16, 2, math);
                 CpuBackend decode = new CpuBackend(w, blocks, 16, 2, math)) {
                float[][] want = prefill.forward(List.of(new Chunk(table, 0, tokens, all, total)));
                decode.forward(List.of(new Chunk(table, 0, Arrays.copyOf(tokens, prompt), new int[] {prompt - 1}, prompt)));
                double worst = 0;
                for (int pos = prompt; pos < total; pos++) {
                    float[] got = decode.forward(List.of(new Chunk(table, pos, new int[] {tokens[pos]}, new int[] {0}, pos + 1)))[0];
                    float largest = 0;
                    for (float v : want[pos]) {
                        largest = Math.max(largest, Math.abs(v));
                    }
                    for (int v = 0; v < got.length; v++) {
                        worst = Math.max(worst, Math.abs(got[v] - want[pos][v]) / largest);
                    }
                }
                assertTrue(worst < 1e-5, math.name() + ": decode is " + worst + " of the largest logit from the prefill's logits");
            }
        }
    }
}
