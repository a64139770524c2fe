package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.job.Main;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** deploy/: the Airflow DAG's graph and commands (parsed with python3; Airflow is not installable here). */
class DeployScriptsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void airflowDagRunsStatsThenResumableRunThenPublishesTheSummary() throws Exception {
        Path script = tmp.resolve("check_dag.py");
        try (InputStream in = DeployScriptsTest.class.getResourceAsStream("/check_dag.py")) {
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        Path dag = TestPaths.projectRoot().resolve("deploy/airflow/longdoc_dag.py");
        Process p = new ProcessBuilder("python3", script.toString(), dag.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(1, TimeUnit.MINUTES));
        assertEquals(0, p.exitValue(), out);
        JsonNode g = JSON.readTree(out);
        assertEquals(List.of("stats", "run", "publish_summary"), JSON.convertValue(g.get("tasks"), List.class));
        assertEquals("[[\"stats\",\"run\"],[\"run\",\"publish_summary\"]]", g.get("edges").toString());
        assertEquals(Main.class.getName(), g.get("main_class").asText());
        List<String> stats = JSON.convertValue(g.get("stats"), List.class);
        List<String> run = JSON.convertValue(g.get("run"), List.class);
        assertEquals("stats", stats.get(0));
        assertTrue(stats.contains("--max-truncated-share"), "the stats task is the gate");
        assertEquals("run", run.get(0));
        assertTrue(run.contains("--resume"), "retries must resume, not recompute");
        assertEquals("1", g.get("conf").get("spark.executor.resource.gpu.amount").asText());
        // Every option the DAG passes is one its subcommand knows.
        for (List<String> cmd : List.of(stats, run)) {
            String help = help(cmd.get(0));
            for (String a : cmd) {
                if (a.startsWith("--")) {
                    assertTrue(help.contains(a + " ") || help.contains(a + "\n"), cmd.get(0) + " has no option " + a + ":\n" + help);
                }
            }
        }
    }

    @Test
    void gpuDiscoveryScriptFailsClearlyWithoutADriver() throws Exception {
        Path script = TestPaths.projectRoot().resolve("deploy/gpu/discover-gpus.sh");
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString()).redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/bin:/bin"); // no nvidia-smi on this machine
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(1, TimeUnit.MINUTES));
        assertEquals(1, p.exitValue());
        assertTrue(out.contains("nvidia-smi not found"), out);
    }

    @Test
    void discoveryScriptListsEveryGpuNvidiaSmiReports() throws Exception {
        // nvidia-smi's own output format for this query on a two-GPU node, from a stand-in that
        // refuses any other arguments (the real one runs in deploy/gpu/check.sh on a GPU box).
        Path bin = Files.createDirectories(tmp.resolve("bin"));
        Path smi = bin.resolve("nvidia-smi");
        Files.writeString(smi, "#!/bin/sh\n[ \"$*\" = \"--query-gpu=index --format=csv,noheader\" ] || { echo \"unexpected: $*\" >&2; exit 9; }\n"
                + "printf '0\\n1\\n'\n");
        smi.toFile().setExecutable(true);
        Path script = TestPaths.projectRoot().resolve("deploy/gpu/discover-gpus.sh");
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString());
        pb.environment().put("PATH", bin + ":/usr/bin:/bin");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(1, TimeUnit.MINUTES));
        assertEquals(0, p.exitValue(), err);
        JsonNode gpus = JSON.readTree(out);
        assertEquals("gpu", gpus.get("name").asText());
        assertEquals(List.of("0", "1"), JSON.convertValue(gpus.get("addresses"), List.class));
    }

    private static String help(String sub) {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, Main.run(new String[] {sub, "--help"}));
        } finally {
            System.setOut(old);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }
}
