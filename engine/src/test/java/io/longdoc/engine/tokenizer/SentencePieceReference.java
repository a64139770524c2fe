package io.longdoc.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the sentencepiece library (Debian's python3-sentencepiece) as the independent reference.
 * In CI (CI=true) a missing reference is a failure; elsewhere the test is skipped with a message.
 */
public final class SentencePieceReference {
    static final String PYTHON = "/usr/bin/python3";
    private static final ObjectMapper JSON = new ObjectMapper();

    private SentencePieceReference() {
    }

    public static boolean available() {
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import sentencepiece").redirectErrorStream(true).start();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    public static void requireAvailable() {
        boolean ok = available();
        if (!ok && "true".equals(System.getenv("CI"))) {
            fail("python3-sentencepiece (the reference tokenizer) is not installed; .ci/run installs it");
        }
        assumeTrue(ok, "skipped: python3-sentencepiece is not installed (apt-get install python3-sentencepiece)");
    }

    /** sentencepiece's ids for each text. */
    public static List<int[]> encode(Path tokenizerModel, List<String> texts) throws Exception {
        Path dir = Files.createTempDirectory("spm-ref");
        Path script = dir.resolve("spm_reference.py");
        try (InputStream in = SentencePieceReference.class.getResourceAsStream("/spm_reference.py")) {
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        Path input = dir.resolve("texts.jsonl");
        Path output = dir.resolve("ids.jsonl");
        List<String> lines = new ArrayList<>();
        for (String t : texts) {
            lines.add(JSON.writeValueAsString(t));
        }
        Files.write(input, lines, StandardCharsets.UTF_8);
        Process p = new ProcessBuilder(PYTHON, script.toString(), tokenizerModel.toString(), input.toString(), output.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail("sentencepiece reference timed out");
        }
        assertEquals(0, p.exitValue(), "sentencepiece reference failed: " + log);
        List<int[]> result = new ArrayList<>();
        for (String line : Files.readAllLines(output, StandardCharsets.UTF_8)) {
            result.add(JSON.readValue(line, int[].class));
        }
        return result;
    }
}
