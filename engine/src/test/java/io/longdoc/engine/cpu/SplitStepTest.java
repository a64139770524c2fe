package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.runtime.Chunk;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A small model's step of several sequences, run as one forward pass per thread, gives every
 * sequence the logits that one thread running the whole step gives: prefill chunks of assorted
 * lengths (some shorter than a panel of tokens), then decode steps over the cache they filled.
 */
class SplitStepTest {
    @Test
    void splitStepsGiveTheLogitsOfOneThread() throws Exception {
        Path dir = Shared.require("models/stories260k");
        ModelConfig c = ModelConfig.load(dir);
        int blockSize = 16, blocksEach = 4;
        int[] promptLengths = {1, 7, 20, 33, 3, 9};
        try (CpuBackend oneThread = new CpuBackend(new LlamaWeights(c, Weights.open(dir)), 32, blockSize, 1, VectorMath.get());
             CpuBackend split = new CpuBackend(new LlamaWeights(c, Weights.open(dir)), 32, blockSize, 2, VectorMath.get())) {
            assertFalse(oneThread.splitsSteps());
            assertTrue(split.splitsSteps(), "stories260k is small enough for split steps");
            int[] cached = new int[promptLengths.length];
            for (int step = 0; step < 4; step++) {
                List<Chunk> chunks = new ArrayList<>();
                for (int s = 0; s < promptLengths.length; s++) {
                    int n = step == 0 ? promptLengths[s] : 1;
                    int[] tokens = new int[n], logitsAt = step == 0 ? new int[] {0, n - 1} : new int[] {0};
                    for (int i = 0; i < n; i++) {
                        tokens[i] = 1 + (s * 37 + step * 11 + i * 5) % (c.vocabSize() - 1);
                    }
                    int[] table = new int[blocksEach];
                    for (int b = 0; b < blocksEach; b++) {
                        table[b] = s * blocksEach + b;
                    }
                    chunks.add(new Chunk(table, cached[s], tokens, logitsAt, cached[s] + n));
                    cached[s] += n;
                }
                float[][] want = oneThread.forward(chunks), got = split.forward(chunks);
                assertEquals(want.length, got.length, "rows of logits, step " + step);
                for (int r = 0; r < want.length; r++) {
                    float largest = 0;
                    for (float v : want[r]) {
                        largest = Math.max(largest, Math.abs(v));
                    }
                    for (int v = 0; v < want[r].length; v++) {
                        assertEquals(want[r][v], got[r][v], 1e-5f * largest, "step " + step + ", logits row " + r + ", id " + v);
                    }
                }
            }
        }
    }
}
