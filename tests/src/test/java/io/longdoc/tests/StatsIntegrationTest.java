package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.job.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code longdoc stats} on the real L-Eval corpus with local Spark: every number of report.json
 * is checked against the tokenizer run directly over the same documents.
 */
class StatsIntegrationTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int CONTEXT = 16384, MAX_NEW = 512, TEMPLATE = 40;

    @TempDir
    static Path tmp;
    static Path input;
    static Path tokenizerModel;
    static Map<String, String> documents = new HashMap<>(); // id -> text (null for the null row)

    @BeforeAll
    static void writeCorpus() throws Exception {
        Path leval = TestPaths.shared("corpus/leval");
        tokenizerModel = TestPaths.shared("tokenizers/llama2/tokenizer.model");
        List<String> lines = new ArrayList<>();
        try (var files = Files.list(leval)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".jsonl")).sorted().toList()) {
                List<String> rows = Files.readAllLines(f, StandardCharsets.UTF_8);
                for (int i = 0; i < rows.size(); i++) {
                    String id = f.getFileName().toString().replace(".jsonl", "") + "-" + i;
                    String text = JSON.readTree(rows.get(i)).get("input").asText();
                    documents.put(id, text);
                    lines.add(row(id, text));
                }
            }
        }
        documents.put("null-row", null);
        lines.add(row("null-row", null));
        documents.put("empty-row", "");
        lines.add(row("empty-row", ""));
        input = tmp.resolve("leval.jsonl");
        Files.write(input, lines, StandardCharsets.UTF_8);
    }

    private static String row(String id, String text) throws Exception {
        ObjectNode o = JSON.createObjectNode();
        o.put("id", id);
        if (text == null) {
            o.putNull("body");
        } else {
            o.put("body", text);
        }
        return JSON.writeValueAsString(o);
    }

    static int runMain(String... args) {
        return Main.run(args);
    }

    static String[] statsArgs(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("stats", "--input", input.toString(), "--format", "json", "--text-col", "body",
                "--tokenizer", tokenizerModel.toString(), "--out", out.toString(),
                "--context-tokens", "" + CONTEXT, "--max-new-tokens", "" + MAX_NEW, "--template-tokens", "" + TEMPLATE,
                "-Dlongdoc.spark.master=local[2]"));
        a.addAll(Arrays.asList(extra));
        return a.toArray(new String[0]);
    }

    @Test
    void reportMatchesTheTokenizerRunDirectly() throws Exception {
        Path out = tmp.resolve("report");
        assertEquals(0, runMain(statsArgs(out)));

        Tokenizer tokenizer = Tokenizer.load(tokenizerModel);
        Map<String, Integer> expectedCounts = new HashMap<>();
        List<Integer> counts = new ArrayList<>();
        for (Map.Entry<String, String> d : documents.entrySet()) {
            if (d.getValue() != null) {
                int c = tokenizer.encode(d.getValue()).length;
                expectedCounts.put(d.getKey(), c);
                counts.add(c);
            }
        }
        counts.sort(null);
        int n = counts.size();
        JsonNode r = JSON.readTree(out.resolve("report.json").toFile());
        assertEquals(documents.size(), r.get("rows").asLong());
        assertEquals(1, r.get("null_rows").asLong());
        assertEquals(1, r.get("empty_rows").asLong());
        assertEquals(0, r.get("duplicate_ids").asLong());
        JsonNode t = r.get("tokens");
        assertEquals(counts.stream().mapToLong(Integer::longValue).sum(), t.get("total").asLong());
        assertEquals(counts.get(0), t.get("min").asInt());
        assertEquals(counts.get(n - 1), t.get("max").asInt());
        assertEquals(counts.stream().mapToDouble(Integer::doubleValue).average().orElseThrow(), t.get("mean").asDouble(), 1e-9);
        for (int p : new int[] {50, 90, 95, 99}) {
            int rank = (int) Math.ceil(p / 100.0 * n); // nearest rank, 1-based
            assertEquals(counts.get(rank - 1), t.get("p" + p).asInt(), "p" + p);
        }
        long[] edges = {0, 4096, 8192, 16384, 32768};
        JsonNode hist = r.get("histogram");
        assertEquals(edges.length, hist.size());
        for (int b = 0; b < edges.length; b++) {
            long lo = edges[b];
            long hi = b + 1 < edges.length ? edges[b + 1] : Long.MAX_VALUE;
            long rows = counts.stream().filter(c -> c >= lo && c < hi).count();
            assertEquals(lo, hist.get(b).get("lo").asLong());
            assertEquals(b + 1 < edges.length, !hist.get(b).get("hi").isNull());
            assertEquals(rows, hist.get(b).get("rows").asLong(), "bucket " + lo);
            assertEquals((double) rows / n, hist.get(b).get("share").asDouble(), 1e-12);
        }
        int budget = CONTEXT - MAX_NEW - TEMPLATE;
        JsonNode bu = r.get("budget");
        assertEquals(budget, bu.get("prompt_budget").asInt());
        long over = counts.stream().filter(c -> c > budget).count();
        assertTrue(over > 0, "the L-Eval corpus has documents over a 16K budget");
        assertEquals(over, bu.get("rows_over").asLong());
        assertEquals((double) over / n, bu.get("share_over").asDouble(), 1e-12);
        assertEquals(counts.stream().filter(c -> c > budget).mapToLong(c -> c - 2L * (budget / 2)).sum(), bu.get("tokens_dropped").asLong());

        assertTrue(Files.readString(out.resolve("report.html")).contains("<svg"));
        assertTrue(Files.readString(out.resolve("report.md")).contains("| " + documents.size() + " |"));

        SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        try {
            List<Row> stored = spark.read().parquet(out.resolve("token_counts").toString()).select("id", "tokens").collectAsList();
            assertEquals(documents.size(), stored.size());
            for (Row row : stored) {
                Integer tokens = row.isNullAt(1) ? null : row.getInt(1);
                assertEquals(expectedCounts.get(row.getString(0)), tokens, row.getString(0));
            }
        } finally {
            spark.stop();
        }
    }

    @Test
    void tokenizerIsLoadedOncePerJvmAndShared() throws Exception {
        assertEquals(0, runMain(statsArgs(tmp.resolve("once-a"))));
        int loads = io.longdoc.udfs.TokenizerHolder.loads();
        assertEquals(0, runMain(statsArgs(tmp.resolve("once-b"))));
        assertEquals(loads, io.longdoc.udfs.TokenizerHolder.loads(), "a second stage in the same executor JVM reuses the tokenizer");
    }

    @Test
    void textFormatReadsOneDocumentPerFile() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("texts"));
        Files.writeString(dir.resolve("a.txt"), "First document.\nTwo lines.");
        Files.writeString(dir.resolve("b.txt"), "");
        Path out = tmp.resolve("text-report");
        assertEquals(0, runMain("stats", "--input", dir.toString(), "--format", "text", "--tokenizer", tokenizerModel.toString(),
                "--out", out.toString()));
        JsonNode r = JSON.readTree(out.resolve("report.json").toFile());
        assertEquals(2, r.get("rows").asLong());
        assertEquals(1, r.get("empty_rows").asLong());
        assertEquals(Tokenizer.load(tokenizerModel).encode("First document.\nTwo lines.").length, r.get("tokens").get("total").asLong());
    }

    @Test
    void modelDirectoryAddsAPrefillEstimateAndItsContext() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        JsonNode config = JSON.readTree(model.resolve("config.json").toFile());
        Path out = tmp.resolve("model-report");
        assertEquals(0, runMain("stats", "--input", input.toString(), "--format", "json", "--text-col", "body",
                "--model", model.toString(), "--out", out.toString(), "--max-new-tokens", "64", "--template-tokens", "10"));
        JsonNode r = JSON.readTree(out.resolve("report.json").toFile());
        int context = config.get("max_position_embeddings").asInt();
        assertEquals(context, r.get("budget").get("context_tokens").asInt());
        int budget = context - 64 - 10;
        long h = config.get("hidden_size").asLong(), l = config.get("num_hidden_layers").asLong();
        long heads = config.get("num_attention_heads").asLong(), kv = config.get("num_key_value_heads").asLong();
        long hd = h / heads, inter = config.get("intermediate_size").asLong(), vocab = config.get("vocab_size").asLong();
        long perLayer = h * heads * hd + 2 * h * kv * hd + heads * hd * h + 3 * h * inter + 2 * h;
        long params = l * perLayer + h;
        Tokenizer tok = Tokenizer.load(model);
        double expected = 0;
        for (String text : documents.values()) {
            if (text == null) {
                continue;
            }
            int n = tok.encode(text).length;
            long kept = (n > budget ? 2L * (budget / 2) : n) + 10;
            expected += 2.0 * kept * params + 4.0 * l * heads * hd * kept * (kept + 1) / 2.0 + 2.0 * h * vocab;
        }
        assertEquals(expected, r.get("prefill_estimate").get("flops").asDouble(), expected * 1e-12);
    }

    @Test
    void gateExitsThreeAfterWritingTheReport() throws Exception {
        Path out = tmp.resolve("gated");
        assertEquals(Main.GATE, runMain(statsArgs(out, "--max-truncated-share", "0.01")));
        assertTrue(Files.exists(out.resolve("report.json")));
        assertEquals(0, runMain(statsArgs(tmp.resolve("open-gate"), "--max-truncated-share", "0.99")));
    }

    @Test
    void badInputIsExitTwoWithAMessageNamingIt() throws Exception {
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            assertEquals(Main.BAD_INPUT, runMain(statsArgs(tmp.resolve("x1"), "--text-col", "nope")));
            assertTrue(captured.toString(StandardCharsets.UTF_8).contains("no column 'nope'"), captured.toString(StandardCharsets.UTF_8));
            captured.reset();
            assertEquals(Main.BAD_INPUT, runMain("stats", "--input", tmp.resolve("missing.parquet").toString(),
                    "--tokenizer", tokenizerModel.toString(), "--out", tmp.resolve("x2").toString()));
            assertTrue(captured.toString(StandardCharsets.UTF_8).contains("missing.parquet"));
            captured.reset();
            assertEquals(Main.BAD_INPUT, runMain(statsArgs(tmp.resolve("x3"), "--format", "csv")));
            assertTrue(captured.toString(StandardCharsets.UTF_8).contains("unknown format"));
            captured.reset();
            Path badTokenizer = tmp.resolve("bad.model");
            Files.write(badTokenizer, new byte[] {0x0A, 0x7F, 0x01});
            assertEquals(Main.BAD_INPUT, runMain("stats", "--input", input.toString(), "--tokenizer", badTokenizer.toString(),
                    "--out", tmp.resolve("x4").toString()));
            assertTrue(captured.toString(StandardCharsets.UTF_8).contains("bad.model"));
            captured.reset();
            assertEquals(Main.BAD_INPUT, runMain(statsArgs(tmp.resolve("x5"), "--buckets", "5,1")));
            assertEquals(Main.BAD_INPUT, runMain(statsArgs(tmp.resolve("x6"), "--max-new-tokens", "20000")));
        } finally {
            System.setErr(err);
        }
    }
}
