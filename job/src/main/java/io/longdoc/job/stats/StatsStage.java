package io.longdoc.job.stats;

import io.longdoc.engine.model.ModelShape;
import io.longdoc.job.InputTable;
import io.longdoc.udfs.TokenCountFunction;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.NavigableMap;
import java.util.TreeMap;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

/**
 * The preliminary stage: tokenizes every document on the executors (one shared tokenizer per
 * executor JVM), writes {@code token_counts/} (id, tokens, chars), and builds the report from
 * aggregates only — row counts and the distribution of token counts.
 */
public final class StatsStage {
    private StatsStage() {
    }

    /** What the stage needs to know. {@code modelDir} is null when only a tokenizer was given. */
    public record Settings(String input, String format, String idCol, String textCol, String tokenizer, String modelDir,
                           String out, TokenStats.Budget budget, long[] buckets, String modelCache) {
    }

    public static StatsReport run(SparkSession spark, Settings s) throws IOException {
        Dataset<Row> docs = InputTable.read(spark, s.input(), s.format(), s.idCol(), s.textCol());
        String countsPath = new Path(s.out(), "token_counts").toString();
        docs.mapPartitions(new TokenCountFunction(s.tokenizer(), io.longdoc.job.SparkSessions.hadoopSettings(spark), s.modelCache()),
                        Encoders.row(TokenCountFunction.SCHEMA))
                .write().mode("overwrite").parquet(countsPath);

        Dataset<Row> counts = spark.read().parquet(countsPath);
        Row totals = counts.agg(
                count(lit(1)),
                sum(when(col("tokens").isNull(), 1).otherwise(0)),
                sum(when(col("chars").equalTo(0), 1).otherwise(0))).first();
        long rows = totals.getLong(0);
        long nullRows = rows == 0 ? 0 : totals.getLong(1);
        long emptyRows = rows == 0 ? 0 : totals.getLong(2);
        long distinctIds = counts.select("id").distinct().count();

        // The only per-value data the driver receives: one row per distinct token count.
        List<Row> perCount = counts.where(col("tokens").isNotNull()).groupBy("tokens").count().collectAsList();
        NavigableMap<Integer, Long> distribution = new TreeMap<>();
        for (Row r : perCount) {
            distribution.put(r.getInt(0), r.getLong(1));
        }
        TokenStats stats = new TokenStats(rows, nullRows, emptyRows, distribution, s.buckets(), s.budget());

        Double flops = null;
        String modelName = null;
        if (s.modelDir() != null) {
            String local = io.longdoc.udfs.ModelCache.localDir(s.modelDir(), io.longdoc.job.SparkSessions.hadoopSettings(spark),
                    java.nio.file.Path.of(s.modelCache()));
            ModelShape shape = ModelShape.fromModelDir(java.nio.file.Path.of(local));
            modelName = shape.architecture() + " @ " + s.modelDir();
            flops = prefillFlops(shape, distribution, s.budget());
        }
        StatsReport report = new StatsReport(stats, s.input(), s.tokenizer(), rows - distinctIds, flops, modelName);
        FileSystem fs = new Path(s.out()).getFileSystem(spark.sparkContext().hadoopConfiguration());
        write(fs, new Path(s.out(), "report.json"), report.json());
        write(fs, new Path(s.out(), "report.md"), report.markdown());
        write(fs, new Path(s.out(), "report.html"), report.html());
        return report;
    }

    /** Σ over documents of the prefill FLOPs of (kept document tokens + template tokens). */
    static double prefillFlops(ModelShape shape, NavigableMap<Integer, Long> distribution, TokenStats.Budget budget) {
        int b = budget.promptBudget();
        double total = 0;
        for (var e : distribution.entrySet()) {
            long kept = e.getKey() > b ? 2L * (b / 2) : e.getKey();
            total += e.getValue() * shape.prefillFlops(kept + budget.templateTokens());
        }
        return total;
    }

    private static void write(FileSystem fs, Path path, String text) throws IOException {
        try (OutputStream out = fs.create(path, true)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        }
    }
}
