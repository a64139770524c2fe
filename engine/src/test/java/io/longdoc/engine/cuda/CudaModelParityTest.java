package io.longdoc.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.runtime.GenerationResult;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Whole models, CPU backend (FP32) against CUDA backend (BF16 weights and KV cache): logits at
 * several positions within 3% of the largest logit, and the same greedy tokens for 32 steps.
 */
class CudaModelParityTest {
    @ParameterizedTest
    @ValueSource(strings = {"models/stories260k", "models/index-tiny-random"})
    void cudaMatchesCpu(String model) throws Exception {
        Gpu.require();
        Path dir = Shared.require(model);
        int[] prompt = new int[90];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + (i * 37) % 500;
        }
        int[] positions = {0, 17, 45, 89};
        EngineSettings cpu = EngineSettings.defaults().withBackend("cpu");
        try (Engine a = Engine.load(dir, cpu); Engine b = Engine.load(dir, cpu.withBackend("cuda"))) {
            assertTrue(b.backend().name().startsWith("cuda"), b.backend().name());
            float[][] la = a.score(prompt, positions), lb = b.score(prompt, positions);
            for (int i = 0; i < positions.length; i++) {
                float max = 0;
                for (float v : la[i]) {
                    max = Math.max(max, Math.abs(v));
                }
                for (int j = 0; j < la[i].length; j++) {
                    assertTrue(Math.abs(la[i][j] - lb[i][j]) <= 0.03 * max,
                            model + " position " + positions[i] + " logit " + j + ": cpu " + la[i][j] + " cuda " + lb[i][j]);
                }
            }
            SamplingParams greedy = SamplingParams.greedy(32).withIgnoreEos(true);
            GenerationResult ra = a.submit(Arrays.copyOf(prompt, 20), greedy).get();
            GenerationResult rb = b.submit(Arrays.copyOf(prompt, 20), greedy).get();
            assertArrayEquals(ra.outputIds(), rb.outputIds(), model + ": greedy tokens, cpu vs cuda");
        }
    }
}
