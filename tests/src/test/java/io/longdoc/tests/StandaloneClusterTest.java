package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real Spark standalone cluster on 127.0.0.1: a master and two workers as separate JVMs, with
 * a SPARK_HOME assembled from the jars Maven resolved; the job jar is submitted through
 * deploy/spark-submit.sh --cpu. Then faults: an executor killed with SIGKILL mid-run, and the
 * driver killed mid-run followed by --resume.
 */
class StandaloneClusterTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<Process> CLUSTER = new ArrayList<>();

    @TempDir
    static Path tmp;
    static Path sparkHome;
    static String masterUrl;
    static Path input;
    static int rows;

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static Map<String, String> env() {
        return Map.of("SPARK_HOME", sparkHome.toString(), "SPARK_LOCAL_IP", "127.0.0.1", "SPARK_SCALA_VERSION", "2.13");
    }

    static Process java(Path log, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m", "-cp", sparkHome.resolve("conf") + File.pathSeparator + sparkHome.resolve("jars") + "/*"));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(env());
        Process p = pb.start();
        CLUSTER.add(p);
        return p;
    }

    static void await(String what, long seconds, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(200);
        }
    }

    static String read(Path p) {
        try {
            return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            return "";
        }
    }

    @BeforeAll
    static void startCluster() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path classpath = TestPaths.projectRoot().resolve("job/target/launcher-classpath.txt");
        assertTrue(Files.exists(classpath), "run mvn verify: the job module's build writes " + classpath);
        sparkHome = Files.createDirectories(tmp.resolve("spark-home"));
        Path jars = Files.createDirectories(sparkHome.resolve("jars"));
        for (String jar : Files.readString(classpath).trim().split(File.pathSeparator)) {
            Path j = Path.of(jar);
            Files.createSymbolicLink(jars.resolve(j.getFileName()), j);
        }
        Path conf = Files.createDirectories(sparkHome.resolve("conf"));
        Files.writeString(conf.resolve("log4j2.properties"), read(TestPaths.projectRoot().resolve("conf/log4j2.properties"))
                + "\nlogger.deploy.name = org.apache.spark.deploy\nlogger.deploy.level = info\n");
        Path bin = Files.createDirectories(sparkHome.resolve("bin"));
        Files.writeString(bin.resolve("spark-submit"), "#!/usr/bin/env bash\n"
                + "SPARK_HOME=\"$(cd \"$(dirname \"$0\")/..\" && pwd)\"; export SPARK_HOME\n"
                + "exec \"" + Path.of(System.getProperty("java.home"), "bin", "java") + "\" -Xmx1g -cp \"$SPARK_HOME/conf:$SPARK_HOME/jars/*\" "
                + "org.apache.spark.deploy.SparkSubmit \"$@\"\n");
        bin.resolve("spark-submit").toFile().setExecutable(true);

        int port = freePort();
        masterUrl = "spark://127.0.0.1:" + port;
        Path masterLog = tmp.resolve("master.log");
        java(masterLog, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "" + port, "--webui-port", "" + freePort());
        await("the master", 90, () -> read(masterLog).contains("ALIVE"));
        for (int w = 1; w <= 2; w++) {
            java(tmp.resolve("worker" + w + ".log"), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
                    "--memory", "1500m", "--webui-port", "" + freePort(), "--work-dir", tmp.resolve("work" + w).toString(), masterUrl);
        }
        await("two workers", 90, () -> read(masterLog).split("Registering worker", -1).length - 1 >= 2);

        // Input: 30 files of one document each, unique ids, read as one task each (see submit). The
        // faults below need the run to last after its first commit; each task's own scheduling costs
        // Spark a fixed time, so 15 tasks per executor keep it going.
        List<Row> docs = new ArrayList<>();
        List<String> leval = Files.readAllLines(TestPaths.shared("corpus/leval/gov_report_summ.jsonl"));
        for (int i = 0; i < 30; i++) {
            String text = JSON.readTree(leval.get(i % leval.size())).get("input").asText();
            docs.add(RowFactory.create(String.format("doc-%02d", i), text.substring(0, Math.min(text.length(), 3000 + 40 * i))));
        }
        rows = docs.size();
        input = tmp.resolve("input.parquet");
        SparkSession spark = SparkSession.builder().master("local[2]").config("spark.ui.enabled", false).getOrCreate();
        try {
            spark.createDataFrame(docs, new StructType().add("id", DataTypes.StringType).add("text", DataTypes.StringType))
                    .repartition(30).write().parquet(input.toString());
        } finally {
            spark.stop();
        }
        assertTrue(Files.isDirectory(model));
    }

    @AfterAll
    static void stopCluster() {
        for (Process p : CLUSTER) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
    }

    static Process submit(Path out, Path log, String... extra) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("bash", TestPaths.projectRoot().resolve("deploy/spark-submit.sh").toString(),
                "--cpu", "--master", masterUrl, "--executors", "2",
                "--spark-conf", "spark.executor.cores=1", "--spark-conf", "spark.executor.memory=1g",
                "--spark-conf", "spark.driver.host=127.0.0.1", "--spark-conf", "spark.task.maxFailures=4",
                // Spark packs small files into a split per core (here two tasks of 15 documents, which
                // finished together, so the driver could not be killed between commits); an open cost
                // of a whole split makes each file its own task.
                "--spark-conf", "spark.sql.files.openCostInBytes=134217728",
                "--", "run", "--input", input.toString(), "--model", TestPaths.shared("models/stories260k").toString(),
                "--template", "plain-en", "--max-new-tokens", "24", "--out", out.toString()));
        cmd.addAll(List.of(extra));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(env());
        return pb.start();
    }

    static List<String> outputIds(Path out) {
        SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        try {
            return spark.read().parquet(out.resolve("output").toString()).select("id").collectAsList().stream().map(r -> r.getString(0)).toList();
        } finally {
            spark.stop();
        }
    }

    static void assertEveryRowOnce(Path out) {
        List<String> ids = outputIds(out);
        assertEquals(rows, ids.size(), "rows in the output");
        assertEquals(rows, ids.stream().distinct().count(), "each id exactly once");
    }

    static Optional<ProcessHandle> executorProcess() {
        return ProcessHandle.allProcesses().filter(p -> p.info().commandLine().orElse("").contains("CoarseGrainedExecutorBackend")
                && p.info().commandLine().orElse("").contains(tmp.toString())).findFirst();
    }

    static boolean committedFiles(Path out) {
        try (var s = Files.list(out.resolve("output"))) {
            return s.anyMatch(f -> f.getFileName().toString().endsWith(".parquet"));
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void runOnTwoExecutorsLoadsOneEngineEach() throws Exception {
        Path out = tmp.resolve("run-plain");
        Path log = tmp.resolve("submit-plain.log");
        Process p = submit(out, log);
        assertTrue(p.waitFor(8, TimeUnit.MINUTES), "run timed out");
        assertEquals(0, p.exitValue(), read(log));
        assertEveryRowOnce(out);
        JsonNode summary = JSON.readTree(out.resolve("run-summary.json").toFile());
        assertEquals(rows, summary.get("rows").get("ok").asInt());
        JsonNode loads = summary.get("engine_loads");
        assertEquals(2, loads.size(), "two executors did the work: " + loads);
        loads.elements().forEachRemaining(n -> assertEquals(1, n.asInt(), "one engine load per executor JVM: " + loads));
    }

    @Test
    void killedExecutorsTasksAreRerunAndNothingIsLostOrDoubled() throws Exception {
        Path out = tmp.resolve("run-kill-executor");
        Path log = tmp.resolve("submit-kill-executor.log");
        Process p = submit(out, log);
        // Kill during inference: after the stats stage has written its report.
        await("the stats report", 300, () -> Files.exists(out.resolve("report.json")) || !p.isAlive());
        Thread.sleep(3000);
        assertTrue(p.isAlive(), "the run finished before an executor could be killed: " + read(log));
        ProcessHandle victim = executorProcess().orElseThrow();
        victim.destroyForcibly(); // SIGKILL
        assertTrue(p.waitFor(8, TimeUnit.MINUTES), "run timed out");
        assertEquals(0, p.exitValue(), read(log));
        assertTrue(read(log).contains("exited with code 137"), "the driver saw the executor die of SIGKILL mid-run:\n" + read(log));
        assertEveryRowOnce(out);
    }

    @Test
    void killedDriverThenResumeComputesOnlyTheMissingRows() throws Exception {
        Path out = tmp.resolve("run-kill-driver");
        Path log = tmp.resolve("submit-kill-driver.log");
        Process p = submit(out, log);
        await("a committed partition", 300, () -> committedFiles(out) || !p.isAlive());
        assertTrue(p.isAlive(), "the run finished before the driver could be killed: " + read(log));
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        p.waitFor(1, TimeUnit.MINUTES);
        int before = outputIds(out).size();
        assertTrue(before > 0 && before < rows, "some but not all rows were written: " + before);

        Path log2 = tmp.resolve("submit-resume.log");
        Process resume = submit(out, log2, "--resume");
        assertTrue(resume.waitFor(8, TimeUnit.MINUTES), "resume timed out");
        assertEquals(0, resume.exitValue(), read(log2));
        assertEveryRowOnce(out);
        JsonNode summary = JSON.readTree(out.resolve("run-summary.json").toFile());
        assertEquals(before, summary.get("rows").get("skipped_existing").asInt(), "only the missing rows were computed");
    }
}
