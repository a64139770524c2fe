package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU check harness as far as it can be checked without a GPU: the cuBLAS 12 → 13 forwarding
 * library (real JCublas natives load against it; calls reach the library it opens, arguments and
 * results intact; a missing symbol aborts naming it), and the bundle plus check.sh on this
 * machine: the jlink'd runtime runs the CUDA test package offline, and with no GPU the GPU tests
 * fail (LONGDOC_REQUIRE_GPU=1) instead of passing by testing nothing.
 */
class GpuHarnessTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static String run(Path dir, Map<String, String> env, String... command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), String.join(" ", command) + " timed out");
        return p.exitValue() + "\n" + out;
    }

    private static boolean has(String tool) throws Exception {
        return new ProcessBuilder("sh", "-c", "command -v " + tool).start().waitFor() == 0;
    }

    private Path jcublasNatives() throws Exception {
        Path jar = Path.of(System.getProperty("user.home"), ".m2/repository/org/jcuda/jcublas-natives/12.6.0/jcublas-natives-12.6.0-linux-x86_64.jar");
        assumeTrue(Files.isRegularFile(jar), "skipped: " + jar + " is absent");
        Path lib = tmp.resolve("libJCublas2.so");
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            Files.copy(zip.getInputStream(zip.getEntry("lib/libJCublas2-12.6.0-linux-x86_64.so")), lib);
        }
        return lib;
    }

    @Test
    void cublasShimLoadsJcublasAndForwardsCalls() throws Exception {
        assumeTrue(has("gcc") && has("nm"), "skipped: gcc and nm are needed");
        Path lib = jcublasNatives();
        Path shimDir = tmp.resolve("shim");
        Path root = TestPaths.projectRoot();
        String built = run(root, Map.of(), "bash", "deploy/gpu/cublas-shim.sh", lib.toString(), shimDir.toString());
        assertTrue(built.startsWith("0\n"), built);

        // A library standing in for cuBLAS 13 with one function, to see a call go through the trampoline.
        Files.writeString(tmp.resolve("target.c"), "int cublasGetVersion_v2(void *h, int *v) { *v = 130000 + (int)(long) h; return 7; }\n");
        String cc = run(tmp, Map.of(), "gcc", "-shared", "-fPIC", "-o", "libtarget.so", "target.c");
        assertTrue(cc.startsWith("0\n"), cc);
        Files.writeString(tmp.resolve("call.c"), """
                #include <dlfcn.h>
                #include <stdio.h>
                int main(int argc, char **argv) {
                    void *jcublas = dlopen(argv[1], RTLD_NOW);            /* JCublas2 resolves its cuBLAS 12 symbols now */
                    if (!jcublas) { printf("jcublas: %s\\n", dlerror()); return 1; }
                    void *shim = dlopen("libcublas.so.12", RTLD_NOW);
                    int (*version)(void *, int *) = (int (*)(void *, int *)) dlsym(shim, "cublasGetVersion_v2");
                    int v = 0;
                    int rc = version((void *) 42, &v);
                    printf("rc=%d v=%d\\n", rc, v);
                    if (argc > 2) {
                        int (*create)(void **) = (int (*)(void **)) dlsym(shim, "cublasCreate_v2");
                        void *h;
                        create(&h);   /* not in the stand-in: must abort naming it */
                    }
                    return 0;
                }
                """);
        String cc2 = run(tmp, Map.of(), "gcc", "-o", "call", "call.c", "-ldl");
        assertTrue(cc2.startsWith("0\n"), cc2);
        Map<String, String> env = Map.of("LD_LIBRARY_PATH", shimDir.toString(), "LONGDOC_CUBLAS_LIBRARY", tmp.resolve("libtarget.so").toString());
        String called = run(tmp, env, tmp.resolve("call").toString(), lib.toString());
        assertEquals("0\nrc=7 v=130042\n", called);
        String missing = run(tmp, env, tmp.resolve("call").toString(), lib.toString(), "missing");
        assertTrue(!missing.startsWith("0\n") && missing.contains("cublasCreate_v2 is not in the cuBLAS library loaded"), missing);

        // Without the shim on the path, the JCublas natives do not load at all.
        String without = run(tmp, Map.of("LONGDOC_CUBLAS_LIBRARY", tmp.resolve("libtarget.so").toString()), tmp.resolve("call").toString(), lib.toString());
        assertTrue(without.contains("libcublas.so.12"), without);
    }

    @Test
    void bundleFitsTheDeviceLimitAndCheckShFailsWithoutAGpu() throws Exception {
        assumeTrue(has("gcc") && has("jlink"), "skipped: gcc and jlink are needed to bundle");
        Path root = TestPaths.projectRoot();
        Path bundle = tmp.resolve("bundle");
        String built = run(root, Map.of(), "bash", "deploy/gpu/bundle.sh", bundle.toString());
        assertTrue(built.startsWith("0\n"), built);
        long size;
        try (var files = Files.walk(bundle)) {
            size = files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
        }
        assertTrue(size < 64L << 20, "bundle of " + size + " bytes exceeds 64 MiB");
        assertTrue(Files.isExecutable(bundle.resolve("runtime/bin/java")));
        assertTrue(Files.isRegularFile(bundle.resolve("shim/libcublas.so.12")));

        Path out = tmp.resolve("check");
        String checked = run(root, Map.of("LONGDOC_GPU_BUNDLE", bundle.toString(), "OUT", out.toString(), "PATH", "/usr/bin:/bin"),
                "bash", "deploy/gpu/check.sh");
        JsonNode summary = JSON.readTree(out.resolve("summary.json").toFile());
        if (summary.get("gpu").isNull()) {
            assertTrue(checked.startsWith("1\n"), "check.sh must fail without a GPU:\n" + checked);
            JsonNode tests = summary.get("tests");
            // The CPU-side checks of the CUDA package pass; every GPU test fails, none is skipped.
            assertEquals(0, tests.get("skipped").asInt(), checked);
            assertTrue(tests.get("failed").asInt() >= 8, checked);
            assertEquals(tests.get("run").asInt() - tests.get("failed").asInt(), 3, checked);
            for (JsonNode f : tests.get("failures")) {
                assertTrue(f.get("message").asText().contains("LONGDOC_REQUIRE_GPU=1"), f.toString());
            }
            assertTrue(Files.readString(out.resolve("summary.txt")).contains("GPU tests: "));
        }
    }
}
