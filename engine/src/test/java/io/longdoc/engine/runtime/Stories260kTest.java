package io.longdoc.engine.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** stories260k against llama2.c's published output (../shared/README.md). */
class Stories260kTest {
    static final String EXPECTED_TEXT = """
            Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
            Lily's mom said, "Lily, let's go to the park." Lily was sad and didn't know what to do. She said, "I want to play with your ball, but I can't find it."
            Lily was sad and didn't know what to do. She said, "I'm sorry, Lily. I didn't know what to do."
            Lily didn't want to help her mom, so she""";
    static final int[] FIRST_40 = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
        410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352};

    @Test
    void greedyFromBosMatchesLlama2c() throws Exception {
        Path model = Shared.require("models/stories260k");
        try (Engine engine = Engine.load(model, EngineSettings.defaults())) {
            GenerationResult r = engine.submit(new int[] {1}, SamplingParams.greedy(200).withIgnoreEos(true)).get();
            assertEquals(200, r.outputIds().length);
            assertArrayEquals(FIRST_40, Arrays.copyOf(r.outputIds(), 40));
            String text = engine.tokenizer().decode(r.outputIds());
            assertEquals(EXPECTED_TEXT, text);
        }
    }
}
