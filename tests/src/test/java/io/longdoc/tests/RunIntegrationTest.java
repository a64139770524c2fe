package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.engine.prompt.ChatFormat;
import io.longdoc.engine.prompt.PromptTemplate;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.engine.truncation.MiddleTruncation;
import io.longdoc.job.Main;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code longdoc run} end to end with local Spark and stories260k: every input row out exactly once, with its status. */
class RunIntegrationTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static Path writeInput(Path dir, List<Row> rows) {
        StructType schema = new StructType().add("id", DataTypes.StringType).add("text", DataTypes.StringType);
        SparkSession spark = SparkSession.builder().master("local[2]").config("spark.ui.enabled", false).getOrCreate();
        try {
            spark.createDataFrame(rows, schema).repartition(4).write().parquet(dir.toString());
        } finally {
            spark.stop();
        }
        return dir;
    }

    private static List<Row> readOutput(Path out) {
        SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        try {
            return spark.read().parquet(out.resolve("output").toString()).select("id", "status", "output").collectAsList();
        } finally {
            spark.stop();
        }
    }

    @Test
    void resumeComputesOnlyMissingRowsAndRefusesChangedSettings() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            rows.add(RowFactory.create("r" + i, i == 5 ? null : "Tom had a red ball number " + i + ". He played all day."));
        }
        Path input = writeInput(tmp.resolve("in.parquet"), rows);
        Path out = tmp.resolve("resume-run");
        String[] base = {"run", "--input", input.toString(), "--model", model.toString(), "--template", "plain-en", "--out", out.toString(),
            "--max-new-tokens", "12", "-Dlongdoc.spark.master=local[2]"};
        assertEquals(0, Main.run(base));
        Map<String, String> first = new HashMap<>();
        for (Row r : readOutput(out)) {
            first.put(r.getString(0), r.getString(2));
        }
        assertEquals(12, first.size());

        // A second run over the same output without --resume is refused.
        assertEquals(Main.BAD_INPUT, Main.run(base));

        // Lose one partition's file, as a killed run would; --resume recomputes only its rows.
        Path lost;
        try (var files = Files.list(out.resolve("output"))) {
            lost = files.filter(f -> f.toString().endsWith(".parquet")).sorted().findFirst().orElseThrow();
        }
        Files.delete(lost);
        int remaining = readOutput(out).size();
        assertTrue(remaining < 12);
        String[] resume = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.stream.Stream.of("--resume")).toArray(String[]::new);
        assertEquals(0, Main.run(resume));
        List<Row> after = readOutput(out);
        assertEquals(12, after.size());
        assertEquals(12, after.stream().map(r -> r.getString(0)).distinct().count());
        for (Row r : after) {
            assertEquals(first.get(r.getString(0)), r.getString(2), "recomputed row " + r.getString(0) + " equals the first run");
        }
        JsonNode summary = JSON.readTree(out.resolve("run-summary.json").toFile());
        assertEquals(remaining, summary.get("rows").get("skipped_existing").asInt());

        // --retry-errors recomputes the error row (still an error: its text is null) and keeps one row per id.
        String[] retry = java.util.stream.Stream.concat(java.util.Arrays.stream(resume), java.util.stream.Stream.of("--retry-errors")).toArray(String[]::new);
        assertEquals(0, Main.run(retry));
        List<Row> retried = readOutput(out);
        assertEquals(12, retried.size());
        assertEquals(11, JSON.readTree(out.resolve("run-summary.json").toFile()).get("rows").get("skipped_existing").asInt());

        // Changed generation settings: refused unless --force.
        String[] changed = resume.clone();
        changed[java.util.Arrays.asList(changed).indexOf("12")] = "8";
        assertEquals(Main.BAD_INPUT, Main.run(changed));

        // Duplicate ids cannot be resumed.
        List<Row> dup = new ArrayList<>(rows);
        dup.add(RowFactory.create("r1", "again"));
        Path dupInput = writeInput(tmp.resolve("dup.parquet"), dup);
        String[] dupResume = resume.clone();
        dupResume[2] = dupInput.toString();
        assertEquals(Main.BAD_INPUT, Main.run(dupResume));

        // Nor can a null id (it would never match the output's and run again each time).
        List<Row> nullId = new ArrayList<>(rows);
        nullId.add(RowFactory.create(null, "no id"));
        String[] nullResume = resume.clone();
        nullResume[2] = writeInput(tmp.resolve("null-id.parquet"), nullId).toString();
        assertEquals(Main.BAD_INPUT, Main.run(nullResume));

        // Other kept columns than the stored run's: the output would mix two shapes.
        String[] keepChanged = java.util.stream.Stream.concat(java.util.Arrays.stream(resume), java.util.stream.Stream.of("--keep-cols", "text"))
                .toArray(String[]::new);
        assertEquals(Main.BAD_INPUT, Main.run(keepChanged));

        // Refused before any work: kept columns that clash with the output's, a context beyond the
        // model's, a negative number of new tokens, --retry-errors without --resume.
        for (String[] extra : new String[][] {{"--keep-cols", "id"}, {"--keep-cols", "Status"}, {"--keep-cols", "text,text"},
                {"--context-tokens", "4096"}, {"--retry-errors"}}) {
            String[] bad = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(extra)).toArray(String[]::new);
            bad[java.util.Arrays.asList(bad).indexOf(out.toString())] = tmp.resolve("refused").toString();
            assertEquals(Main.BAD_INPUT, Main.run(bad), String.join(" ", extra));
        }
        String[] negative = base.clone();
        negative[java.util.Arrays.asList(negative).indexOf("12")] = "-5";
        negative[java.util.Arrays.asList(negative).indexOf(out.toString())] = tmp.resolve("refused").toString();
        assertEquals(Main.BAD_INPUT, Main.run(negative));
        assertTrue(!Files.exists(tmp.resolve("refused").resolve("output")));
    }

    /** Column names with dots are names, not paths into structs; a JSON file read as Parquet is a clear input error. */
    @Test
    void dottedColumnNamesAreReadAndAFileOfAnotherFormatIsRefused() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path json = tmp.resolve("dotted.jsonl");
        Files.writeString(json, "{\"doc.id\": \"a\", \"my.text\": \"Tom had a red ball.\"}\n{\"doc.id\": \"b\", \"my.text\": \"Lily ran.\"}\n");
        Path out = tmp.resolve("dotted-run");
        assertEquals(0, Main.run(new String[] {"run", "--input", json.toString(), "--format", "json", "--id-col", "doc.id", "--text-col", "my.text",
            "--model", model.toString(), "--template", "plain-en", "--out", out.toString(), "--max-new-tokens", "3", "-Dlongdoc.spark.master=local[2]"}));
        List<Row> written = readOutput(out);
        assertEquals(List.of("a", "b"), written.stream().map(r -> r.getString(0)).sorted().toList());
        assertTrue(written.stream().allMatch(r -> "ok".equals(r.getString(1))));
        assertEquals(Main.BAD_INPUT, Main.run(new String[] {"run", "--input", json.toString(), "--model", model.toString(),
            "--template", "plain-en", "--out", tmp.resolve("as-parquet").toString(), "-Dlongdoc.spark.master=local[2]"}));
        // A line that is not JSON: refused, not turned into a row with a null id and text.
        Path broken = tmp.resolve("broken.jsonl");
        Files.writeString(broken, "{\"id\": \"a\", \"text\": \"fine\"}\n{\"id\": \"b\", \"text\": \"cut off\n");
        assertEquals(Main.BAD_INPUT, Main.run(new String[] {"run", "--input", broken.toString(), "--format", "json", "--model", model.toString(),
            "--template", "plain-en", "--out", tmp.resolve("broken-run").toString(), "-Dlongdoc.spark.master=local[2]"}));
    }

    @Test
    void aCpuKvCacheTooSmallForTheLongestDocumentIsRefusedBeforeInference() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path input = writeInput(tmp.resolve("in.parquet"), List.of(
                RowFactory.create("long", "Tom had a red ball and played with it all day. ".repeat(8)),
                RowFactory.create("short", "A cat sat.")));
        Path out = tmp.resolve("small-kv");
        List<String> args = new ArrayList<>(List.of("run", "--input", input.toString(), "--model", model.toString(), "--template", "plain-en",
                "--out", out.toString(), "--max-new-tokens", "12", "--backend", "cpu", "-Dlongdoc.spark.master=local[2]"));
        // No megabyte at all: the engine would size its cache to one block of 16 tokens.
        args.add("-Dlongdoc.engine.kv-cache-mb=0");
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        System.setErr(new java.io.PrintStream(err, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.run(args.toArray(new String[0]));
        } finally {
            System.setErr(stderr);
        }
        String message = err.toString(StandardCharsets.UTF_8);
        assertEquals(Main.BAD_INPUT, code, message);
        assertTrue(message.contains("KV cache holds 16 tokens") && message.contains("longdoc.engine.kv-cache-mb to 1 or more"), message);
        assertTrue(!Files.exists(out.resolve("output")), "no inference ran");
        // One megabyte holds 819 tokens of stories260k (1 280 bytes a token): the same run goes through.
        args.set(args.size() - 1, "-Dlongdoc.engine.kv-cache-mb=1");
        assertEquals(0, Main.run(args.toArray(new String[0])));
        for (Row r : readOutput(out)) {
            assertEquals("ok", r.getString(1), "row " + r.getString(0));
        }
    }

    @Test
    void everyRowComesOutOnceWithItsStatus() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path leval = TestPaths.shared("corpus/leval/news_summ.jsonl");
        List<String> long1 = Files.readAllLines(leval, StandardCharsets.UTF_8);
        List<Row> rows = new ArrayList<>();
        rows.add(RowFactory.create("a", "Once upon a time, there was a little dog named Max.", "short"));
        rows.add(RowFactory.create("b", "Lily and Tom went to the park to play with a red ball.", "short"));
        rows.add(RowFactory.create("c", JSON.readTree(long1.get(0)).get("input").asText(), "long"));
        rows.add(RowFactory.create("d", null, "null"));
        rows.add(RowFactory.create("e", "", "empty"));
        rows.add(RowFactory.create("a", "A duplicate id is still its own row.", "dup"));
        rows.add(RowFactory.create("big", "The quick brown fox jumps over the lazy dog. ".repeat(46_000), "2mb"));
        rows.add(RowFactory.create("sur", "broken \uD800 surrogate \uDC00 text", "surrogates"));
        for (int i = 0; i < 6; i++) {
            rows.add(RowFactory.create("s" + i, "The cat sat on the mat number " + i + ".", "short"));
        }
        StructType schema = new StructType().add("id", DataTypes.StringType).add("text", DataTypes.StringType).add("source", DataTypes.StringType);
        Path input = tmp.resolve("input.parquet");
        SparkSession spark = SparkSession.builder().master("local[2]").config("spark.ui.enabled", false).getOrCreate();
        try {
            spark.createDataFrame(rows, schema).repartition(3).write().parquet(input.toString());
        } finally {
            spark.stop();
        }

        Path out = tmp.resolve("run");
        assertEquals(0, Main.run(new String[] {"run", "--input", input.toString(), "--model", model.toString(), "--task", "summarize",
            "--template", "plain-en", "--out", out.toString(), "--max-new-tokens", "16", "--keep-cols", "source",
            "-Dlongdoc.spark.master=local[2]"}));

        spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        List<Row> output;
        try {
            output = spark.read().parquet(out.resolve("output").toString()).collectAsList();
            assertEquals(List.of("id", "source", "output", "status", "error", "input_tokens", "kept_tokens", "dropped_tokens", "truncated",
                    "output_tokens", "finish_reason", "latency_ms", "model_fingerprint", "template_hash", "seed"),
                    List.of(spark.read().parquet(out.resolve("output").toString()).columns()));
        } finally {
            spark.stop();
        }
        assertEquals(rows.size(), output.size());
        Map<String, Integer> seen = new HashMap<>();
        Tokenizer tok = Tokenizer.load(model);
        PromptTemplate template = PromptTemplate.builtIn("plain-en");
        int[][] around = ChatFormat.PLAIN.around(tok, template.system(), template.before(), template.after());
        int budget = 512 - 16 - around[0].length - around[1].length;
        Row longRow = null;
        for (Row r : output) {
            String id = r.getAs("id");
            seen.merge(id + "/" + r.getAs("source"), 1, Integer::sum);
            if ("null".equals(r.getAs("source"))) {
                assertEquals("error", r.getAs("status"));
                assertEquals("text is null", r.getAs("error"));
                assertNull(r.getAs("output"));
                continue;
            }
            assertEquals("ok", r.getAs("status"), String.valueOf((Object) r.getAs("error")));
            String text = rows.stream().filter(x -> x.getString(0).equals(id) && x.getString(2).equals(r.getAs("source"))).findFirst().orElseThrow().getString(1);
            int tokens = tok.encode(text).length;
            if ("surrogates".equals(r.getAs("source"))) {
                // Parquet stores strings as UTF-8, so Spark has already replaced the lone surrogates on write.
                tokens = tok.encode(new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8)).length;
            }
            assertEquals(tokens, (int) r.getAs("input_tokens"));
            assertEquals(tokens > budget, r.getAs("truncated"));
            assertEquals(tokens, (int) r.getAs("kept_tokens") + (int) r.getAs("dropped_tokens"));
            assertTrue((int) r.getAs("output_tokens") <= 16);
            assertNotNull(r.getAs("output"));
            if ("long".equals(r.getAs("source"))) {
                longRow = r;
            }
        }
        assertEquals(rows.size(), seen.values().stream().mapToInt(Integer::intValue).sum());
        assertTrue(seen.values().stream().allMatch(v -> v == 1), seen.toString());

        // The truncated document's output is what the engine gives for prefix + first/last halves + suffix.
        assertNotNull(longRow);
        assertEquals(2 * (budget / 2), (int) longRow.getAs("kept_tokens"));
        String longText = rows.get(2).getString(1);
        MiddleTruncation.Result cut = MiddleTruncation.document(tok.encode(longText), budget, tok.sentencePiece()::byteValue);
        int[] prompt = new int[around[0].length + cut.kept() + around[1].length];
        System.arraycopy(around[0], 0, prompt, 0, around[0].length);
        System.arraycopy(cut.keptIds(), 0, prompt, around[0].length, cut.kept());
        System.arraycopy(around[1], 0, prompt, around[0].length + cut.kept(), around[1].length);
        try (Engine engine = Engine.load(model, EngineSettings.defaults())) {
            var direct = engine.submit(prompt, new SamplingParams(16, 0f, 0, 1f, template.repetitionPenalty(), 0, false, new int[0])).get();
            assertEquals(tok.decode(direct.contentIds()), longRow.getAs("output"));
        }

        JsonNode summary = JSON.readTree(out.resolve("run-summary.json").toFile());
        assertEquals(rows.size(), summary.get("rows").get("total").asInt());
        assertEquals(1, summary.get("rows").get("error").asInt());
        assertEquals(0, summary.get("rows").get("skipped_existing").asInt());
        // Local mode: one executor (the driver JVM), one engine load.
        assertEquals(1, summary.get("engine_loads").size(), summary.toString());
        assertEquals(1, summary.get("engine_loads").elements().next().asInt());
        JsonNode report = JSON.readTree(out.resolve("report.json").toFile());
        assertEquals(rows.size(), report.get("rows").asInt());
        assertEquals(1, report.get("duplicate_ids").asInt());
        assertArrayEquals(new int[] {around[0].length + around[1].length}, new int[] {report.get("budget").get("template_tokens").asInt()});
    }
}
