package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.job.Main;
import io.longdoc.job.demo.DemoCorpus;
import io.longdoc.job.demo.DemoModel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The demo on its own generated model, and that model's tokenizer against the sentencepiece library. */
class DemoTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void demoRunsStatsThenInferenceOnItsOwnRandomModel() throws Exception {
        Path out = tmp.resolve("demo");
        assertEquals(0, Main.run(new String[] {"demo", "--out", out.toString(), "--documents", "60", "--run-documents", "6",
            "-Dlongdoc.spark.master=local[2]"}));
        assertTrue(Files.readString(out.resolve("model/README.txt")).contains("RANDOM WEIGHTS"));
        JsonNode report = JSON.readTree(out.resolve("stats/report.json").toFile());
        assertEquals(60, report.path("rows").path("total").asInt(report.path("rows").asInt()), report.toString());
        JsonNode summary = JSON.readTree(out.resolve("run/run-summary.json").toFile());
        assertEquals(6, summary.get("rows").get("total").asInt());
        SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        try {
            List<Row> rows = spark.read().parquet(out.resolve("run/output").toString()).collectAsList();
            assertEquals(6, rows.size());
            for (Row r : rows) {
                assertTrue(List.of("ok", "error").contains((String) r.getAs("status")));
                if (r.getAs("status").equals("ok")) {
                    assertTrue((Integer) r.getAs("output_tokens") > 0);
                }
            }
        } finally {
            spark.stop();
        }
    }

    @Test
    void demoTokenizerEncodesExactlyAsSentencepiece() throws Exception {
        String python = "/usr/bin/python3";
        boolean available = new ProcessBuilder(python, "-c", "import sentencepiece").start().waitFor() == 0;
        if (!available && "true".equals(System.getenv("CI"))) {
            fail("python3-sentencepiece (the reference tokenizer) is not installed; .ci/run installs it");
        }
        assumeTrue(available, "skipped: python3-sentencepiece is not installed");
        Path model = DemoModel.create(tmp.resolve("model"), 42, 120);
        List<String> texts = new ArrayList<>();
        for (long i = 100; i < 160; i++) {
            Row d = DemoCorpus.document(42, i);
            if (!d.isNullAt(2)) {
                texts.add(d.getString(2));
            }
        }
        texts.addAll(List.of("", " ", "  two  spaces ", "tab\there\nnewline", "naïve café 😀 ünïcödé", "数字 12345 and 中文混合"));
        Path in = tmp.resolve("texts.json");
        Files.writeString(in, JSON.writeValueAsString(texts));
        Path outFile = tmp.resolve("ids.json");
        Process p = new ProcessBuilder(python, "-c", String.join("\n",
                "import json, sys, sentencepiece as spm",
                "sp = spm.SentencePieceProcessor(model_file=sys.argv[1])",
                "texts = json.load(open(sys.argv[2], encoding='utf-8'))",
                "json.dump([sp.encode(t) for t in texts], open(sys.argv[3], 'w'))"),
                model.resolve("tokenizer.model").toString(), in.toString(), outFile.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, log);
        JsonNode expected = JSON.readTree(outFile.toFile());
        Tokenizer tok = Tokenizer.load(model);
        assertTrue(tok.vocabSize() > 600, "vocabulary of " + tok.vocabSize());
        long merged = 0;
        for (int i = 0; i < texts.size(); i++) {
            int[] want = JSON.convertValue(expected.get(i), int[].class);
            int[] got = tok.encode(texts.get(i));
            assertEquals(Arrays.toString(want), Arrays.toString(got), "text " + i + ": " + texts.get(i));
            merged += Arrays.stream(got).filter(id -> id >= 259).count();
        }
        assertTrue(merged > 0, "the trained pieces are used");
    }
}
