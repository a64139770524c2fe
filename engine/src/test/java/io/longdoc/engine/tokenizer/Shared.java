package io.longdoc.engine.tokenizer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates ../shared (test models, tokenizers, corpus); tests that need it skip with a message when it is absent. */
public final class Shared {
    private Shared() {
    }

    public static Path root() {
        String env = System.getenv("LONGDOC_SHARED");
        Path p = env != null ? Path.of(env) : Path.of("..", "..", "shared");
        return p.toAbsolutePath().normalize();
    }

    /** The path under ../shared, or skips the test with a message saying what is missing. */
    public static Path require(String relative) {
        Path p = root().resolve(relative);
        assumeTrue(Files.exists(p), "skipped: " + p + " is absent (../shared holds the test assets; CI always has it)");
        return p;
    }
}
