package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.job.Main;
import io.longdoc.udfs.ModelCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model given as a Hadoop filesystem URI is copied to the local cache, checked, and used. */
class ModelCacheTest {
    @TempDir
    Path tmp;

    @Test
    void remoteModelIsCopiedOnceAndCompletely() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        String uri = model.toUri().toString(); // file:///…: read through Hadoop's FileSystem, like hdfs:// or s3a://
        Path cache = tmp.resolve("cache");
        String local = ModelCache.localDir(uri, Map.of(), cache);
        assertNotEquals(model.toString(), local);
        assertTrue(Path.of(local).startsWith(cache));
        try (var files = Files.list(model)) {
            for (Path f : files.toList()) {
                assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(Path.of(local).resolve(f.getFileName())), f.toString());
            }
        }
        assertEquals(local, ModelCache.localDir(uri, Map.of(), cache), "the same JVM copies once");
        try (var entries = Files.list(cache)) {
            assertEquals(1, entries.count(), "no staging directory left behind");
        }
        assertEquals(model.toString(), ModelCache.localDir(model.toString(), Map.of(), cache), "a local path is used as it is");
    }

    @Test
    void runReadsItsModelFromAFilesystemUri() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        Path input = tmp.resolve("in.parquet");
        SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate();
        try {
            spark.createDataFrame(List.of(RowFactory.create("x", "Tim saw a bird.")),
                    new StructType().add("id", DataTypes.StringType).add("text", DataTypes.StringType)).write().parquet(input.toString());
        } finally {
            spark.stop();
        }
        Path out = tmp.resolve("out");
        assertEquals(0, Main.run(new String[] {"run", "--input", input.toString(), "--model", model.toUri().toString(), "--template", "plain-en",
            "--max-new-tokens", "8", "--out", out.toString(), "-Dlongdoc.engine.model-cache=\"" + tmp.resolve("cache") + "\""}));
        JsonNode summary = new ObjectMapper().readTree(out.resolve("run-summary.json").toFile());
        assertEquals(1, summary.get("rows").get("ok").asInt());
        assertTrue(Files.list(tmp.resolve("cache")).findAny().isPresent());
    }
}
