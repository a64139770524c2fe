package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The engine on every JDK from 17 up that this machine has: Spark 4.1 runs on 17 and 21, and the
 * Vector API the CPU backend uses is an incubator module whose methods change between releases
 * (ByteBuffer loads are gone from Java 20 on).
 */
class JavaVersionsTest {
    /** llama2.c's first 40 greedy ids for stories260k from BOS (../shared/README.md). */
    private static final String STORIES_FIRST_40 =
            "403,407,261,378,432,383,286,261,376,298,315,421,395,317,426,338,401,396,267,337,"
            + "410,408,419,292,411,322,265,282,295,433,426,385,328,432,358,394,261,370,432,352";

    @Test
    void generateMatchesTheReferencesOnEveryInstalledJdk() throws Exception {
        String stories = TestPaths.shared("models/stories260k").toString();
        // index-tiny-random has BF16 weights: the 16-bit paths, with and without ByteBuffer vector loads.
        Path index = TestPaths.shared("models/index-tiny-random");
        JsonNode greedy = new ObjectMapper().readTree(index.resolve("reference.json").toFile()).get("greedy");
        String prompt = join(greedy.get("prompt_ids")), expected = join(greedy.get("new_tokens"));
        List<Path> jdks = installedJdks();
        assertFalse(jdks.isEmpty(), "no JDK found, not even the one running this test");
        for (Path jdk : jdks) {
            assertEquals("{\"ids\":[" + STORIES_FIRST_40 + "]}", generateIds(jdk, stories, "1", 40), jdk + ": stories260k");
            assertEquals("{\"ids\":[" + expected + "]}", generateIds(jdk, index.toString(), prompt, greedy.get("new_tokens").size()),
                    jdk + ": index-tiny-random");
        }
    }

    /** {@code longdoc generate --print-ids} on that JDK: greedy, EOS ignored. */
    private static String generateIds(Path jdk, String model, String ids, int tokens) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", TestPaths.projectRoot().resolve("deploy/longdoc").toString(), "generate",
                "--model", model, "--ids", ids, "--max-new-tokens", String.valueOf(tokens), "--ignore-eos", "--temperature", "0", "--print-ids");
        pb.environment().put("JAVA_HOME", jdk.toString());
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), jdk + ": timed out");
        assertEquals(0, p.exitValue(), jdk + ": " + err);
        return out.strip();
    }

    private static String join(JsonNode ids) {
        List<String> parts = new ArrayList<>();
        ids.forEach(id -> parts.add(id.asText()));
        return String.join(",", parts);
    }

    /** The JDK running this test and every JDK of version 17 or later under /usr/lib/jvm. */
    private static List<Path> installedJdks() throws Exception {
        List<Path> jdks = new ArrayList<>();
        jdks.add(Path.of(System.getProperty("java.home")).toRealPath());
        Path root = Path.of("/usr/lib/jvm");
        if (Files.isDirectory(root)) {
            Pattern version = Pattern.compile("^JAVA_VERSION=\"(\\d+)", Pattern.MULTILINE);
            try (Stream<Path> dirs = Files.list(root)) {
                for (Path dir : dirs.sorted().toList()) {
                    Path release = dir.resolve("release");
                    if (!Files.isRegularFile(release) || !Files.isExecutable(dir.resolve("bin/java"))) {
                        continue;
                    }
                    Matcher m = version.matcher(Files.readString(release));
                    Path real = dir.toRealPath();
                    if (m.find() && Integer.parseInt(m.group(1)) >= 17 && !jdks.contains(real)) {
                        jdks.add(real);
                    }
                }
            }
        }
        return jdks;
    }
}
