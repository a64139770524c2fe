package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.job.LongDocUdfs;
import io.longdoc.job.Main;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code longdoc run --task extract} and SQL {@code extract_fields()} with stories260k: every row once,
 * every ok row's output parses to the schema and equals its {@code extracted} struct, a JSON that
 * cannot close within max_new_tokens is retried and then reported as an error.
 */
class ExtractIntegrationTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String SCHEMA = """
            {"type":"object","properties":{
              "name":{"type":"string","maxLength":10},
              "age":{"type":"integer"},
              "height":{"type":"number"},
              "kind":{"enum":["cat","dog","bird"]},
              "happy":{"type":"boolean"},
              "toys":{"type":"array","items":{"type":"string","maxLength":5},"maxItems":2},
              "home":{"type":"object","properties":{"town":{"type":"string","maxLength":6}},"required":["town"]}},
             "required":["name","age","kind","home"]}""";

    @TempDir
    Path tmp;

    /** stories260k has a 512-token context and a 512-piece vocabulary, too small for the built-in template with the schema in it. */
    private Path shortTemplate() throws java.io.IOException {
        return Files.writeString(tmp.resolve("facts.txt"), "{document}\nFacts:");
    }

    @Test
    void extractWritesAStructPerRowThatMatchesItsJson() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path schemaFile = Files.writeString(tmp.resolve("schema.json"), SCHEMA);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            rows.add(RowFactory.create("d" + i, i == 3 ? null : "Lily had a cat named Tom. Tom was " + i + " years old and loved his ball."));
        }
        Path input = tmp.resolve("in.parquet");
        SparkSession spark = SparkSession.builder().master("local[2]").config("spark.ui.enabled", false).getOrCreate();
        try {
            spark.createDataFrame(rows, new StructType().add("id", DataTypes.StringType).add("text", DataTypes.StringType))
                    .repartition(3).write().parquet(input.toString());
        } finally {
            spark.stop();
        }
        Path out = tmp.resolve("extract");
        assertEquals(0, Main.run(new String[] {"run", "--input", input.toString(), "--model", model.toString(), "--task", "extract",
            "--schema", schemaFile.toString(), "--template", shortTemplate().toString(), "--out", out.toString(), "--max-new-tokens", "120", "-Dlongdoc.spark.master=local[2]"}));

        spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        try {
            var table = spark.read().parquet(out.resolve("output").toString());
            List<String> columns = List.of(table.columns());
            assertEquals(List.of("id", "output", "extracted", "status", "error", "input_tokens", "kept_tokens", "dropped_tokens", "truncated",
                    "output_tokens", "finish_reason", "latency_ms", "model_fingerprint", "template_hash", "seed"), columns);
            StructType extracted = (StructType) table.schema().apply("extracted").dataType();
            assertEquals(DataTypes.StringType, extracted.apply("name").dataType());
            assertEquals(DataTypes.LongType, extracted.apply("age").dataType());
            assertEquals(DataTypes.DoubleType, extracted.apply("height").dataType());
            assertEquals(DataTypes.StringType, extracted.apply("kind").dataType());
            assertEquals(DataTypes.BooleanType, extracted.apply("happy").dataType());
            assertTrue(extracted.apply("toys").dataType() instanceof ArrayType);
            assertTrue(extracted.apply("home").dataType() instanceof StructType);

            List<Row> result = table.collectAsList();
            assertEquals(10, result.size());
            assertEquals(10, result.stream().map(r -> r.getString(0)).distinct().count());
            for (Row r : result) {
                if (r.getString(0).equals("d3")) {
                    assertEquals("error", r.getAs("status"));
                    assertEquals("text is null", r.getAs("error"));
                    continue;
                }
                assertEquals("ok", r.getAs("status"), r.getString(0) + ": " + r.getAs("error"));
                assertEquals("stop", r.getAs("finish_reason"));
                JsonNode json = JSON.readTree((String) r.getAs("output"));
                Row x = r.getAs("extracted");
                // The struct holds exactly what the JSON says, field by field.
                assertEquals(json.get("name").asText(), x.getAs("name"));
                assertTrue(json.get("name").asText().codePointCount(0, json.get("name").asText().length()) <= 10);
                assertEquals(json.get("age").asLong(), (long) x.getAs("age"));
                assertTrue(List.of("cat", "dog", "bird").contains((String) x.getAs("kind")));
                assertEquals(json.has("height") ? json.get("height").asDouble() : null, x.getAs("height"));
                assertEquals(json.has("happy") ? json.get("happy").asBoolean() : null, x.getAs("happy"));
                if (json.has("toys")) {
                    List<Object> toys = x.getList(x.fieldIndex("toys"));
                    assertEquals(json.get("toys").size(), toys.size());
                    assertTrue(toys.size() <= 2);
                } else {
                    assertNull(x.getAs("toys"));
                }
                Row home = x.getAs("home");
                assertEquals(json.get("home").get("town").asText(), home.getAs("town"));
            }
        } finally {
            spark.stop();
        }

        // Resuming with another schema is refused (its extracted column would not match the stored rows).
        Path otherSchema = Files.writeString(tmp.resolve("other.json"), SCHEMA.replace("\"maxLength\":10", "\"maxLength\":11"));
        assertEquals(Main.BAD_INPUT, Main.run(new String[] {"run", "--input", input.toString(), "--model", model.toString(), "--task", "extract",
            "--schema", otherSchema.toString(), "--template", shortTemplate().toString(), "--out", out.toString(), "--max-new-tokens", "120",
            "--resume", "-Dlongdoc.spark.master=local[2]"}));

        // A schema whose JSON cannot close in 8 tokens: retried once, then status error with the reason.
        Path tight = tmp.resolve("tight");
        assertEquals(0, Main.run(new String[] {"run", "--input", input.toString(), "--model", model.toString(), "--task", "extract",
            "--schema", schemaFile.toString(), "--template", shortTemplate().toString(), "--out", tight.toString(), "--max-new-tokens", "8", "-Dlongdoc.spark.master=local[2]"}));
        spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        try {
            List<Row> result = spark.read().parquet(tight.resolve("output").toString()).collectAsList();
            assertEquals(10, result.size());
            for (Row r : result) {
                assertEquals("error", r.getAs("status"));
                if (!r.getString(0).equals("d3")) {
                    assertTrue(((String) r.getAs("error")).contains("did not close within 8 new tokens, in 2 tries"), (String) r.getAs("error"));
                    assertEquals("length", r.getAs("finish_reason"));
                    assertNull(r.getAs("extracted"));
                }
            }
        } finally {
            spark.stop();
        }
        JsonNode summary = JSON.readTree(tight.resolve("run-summary.json").toFile());
        assertEquals(10, summary.get("rows").get("error").asInt());
    }

    @Test
    void badSchemasAreRefusedBeforeAnyWork() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path bad = Files.writeString(tmp.resolve("bad.json"), "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"date\"}}}");
        Path in = Files.writeString(tmp.resolve("in.txt"), "hello");
        assertEquals(Main.BAD_INPUT, Main.run(new String[] {"run", "--input", in.toString(), "--format", "text", "--model", model.toString(),
            "--task", "extract", "--schema", bad.toString(), "--out", tmp.resolve("o").toString()}));
        assertEquals(Main.BAD_INPUT, Main.run(new String[] {"run", "--input", in.toString(), "--format", "text", "--model", model.toString(),
            "--task", "extract", "--out", tmp.resolve("o").toString()}));
    }

    @Test
    void sqlExtractReturnsTheStruct() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path schemaFile = Files.writeString(tmp.resolve("schema.json"), SCHEMA);
        SparkSession spark = SparkSession.builder().master("local[2]").config("spark.ui.enabled", false).getOrCreate();
        try {
            LongDocUdfs.register(spark, com.typesafe.config.ConfigFactory.parseString(
                    "longdoc.udf.model = \"" + model + "\"\nlongdoc.udf.schema = \"" + schemaFile + "\"\nlongdoc.udf.max-new-tokens = 120"
                    + "\nlongdoc.udf.extract-template = \"" + shortTemplate() + "\"")
                    .withFallback(com.typesafe.config.ConfigFactory.load()));
            spark.createDataFrame(List.of(RowFactory.create("a", "Tom the dog was three."), RowFactory.create("b", null)),
                    new StructType().add("id", DataTypes.StringType).add("text", DataTypes.StringType)).createOrReplaceTempView("docs");
            List<Row> rows = spark.sql("SELECT id, extract_fields(text) AS x, extract_fields(text).age AS age FROM docs ORDER BY id").collectAsList();
            // SQL's own EXTRACT(field FROM source) still works beside it.
            assertEquals(2026, spark.sql("SELECT EXTRACT(YEAR FROM DATE'2026-11-29')").first().getInt(0));
            assertEquals(2, rows.size());
            Row a = rows.get(0).getAs("x");
            assertNotNull(a);
            assertNotNull(a.getAs("name"));
            assertEquals((Object) a.getAs("age"), rows.get(0).getAs("age"));
            assertNull(rows.get(1).getAs("x"));
        } finally {
            spark.stop();
        }
    }
}
