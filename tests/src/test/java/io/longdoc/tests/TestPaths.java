package io.longdoc.tests;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the project and ../shared are, for tests run from any module directory. */
final class TestPaths {
    private TestPaths() {
    }

    static Path projectRoot() {
        String env = System.getenv("LONGDOC_HOME");
        return (env != null ? Path.of(env) : Path.of("..")).toAbsolutePath().normalize();
    }

    static Path shared(String relative) {
        String env = System.getenv("LONGDOC_SHARED");
        Path root = env != null ? Path.of(env) : projectRoot().resolve("../shared");
        Path p = root.resolve(relative).normalize();
        assumeTrue(Files.exists(p), "skipped: " + p + " is absent (../shared holds the test assets; CI always has it)");
        return p;
    }
}
