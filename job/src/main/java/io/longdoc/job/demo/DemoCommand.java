package io.longdoc.job.demo;

import com.typesafe.config.Config;
import io.longdoc.job.Main;
import io.longdoc.job.SparkSessions;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import io.longdoc.job.stats.StatsReport;
import io.longdoc.job.stats.StatsStage;
import io.longdoc.job.stats.TokenStats;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;

/**
 * {@code longdoc demo}: generates a sample corpus as Parquet and runs the pipeline on it with
 * embedded Spark, printing where everything went.
 */
public final class DemoCommand {
    private DemoCommand() {
    }

    public static Args args() {
        return new Args("demo", "[--model DIR] [--tokenizer PATH] [--out DIR] [--documents N]")
                .option("model", "DIR", "model to run (default: a small random-weight model the demo generates; e.g. Index-1.9B-32K's directory)")
                .option("tokenizer", "PATH", "tokenizer for the stats stage (default: the model's)")
                .option("out", "DIR", "where the corpus, model, report and output go (default: demo-out)")
                .option("documents", "N", "number of documents to generate (default 240)")
                .option("run-documents", "N", "documents the inference part summarises (default 24)");
    }

    public static int run(Args args, Config config) throws Exception {
        Config demo = config.getConfig("longdoc.demo");
        Path out = Path.of(args.get("out", demo.getString("out"))).toAbsolutePath();
        String model = args.get("model");
        if (model == null) {
            long t0 = System.nanoTime();
            model = DemoModel.create(out.resolve("model"), demo.getLong("seed"), 200).toString();
            System.out.printf("%s%n  generated in %.1f s: %s%n", DemoModel.LABEL, (System.nanoTime() - t0) / 1e9, model);
        }
        String tokenizer = args.get("tokenizer", model);
        Main.loadTokenizer(tokenizer);
        int documents = args.getInt("documents") != null ? args.getInt("documents") : demo.getInt("documents");
        if (documents <= 0) {
            throw new UsageException("--documents must be positive");
        }
        Path corpus = out.resolve("corpus");
        Path statsOut = out.resolve("stats");

        SparkSession spark = SparkSessions.create(config, "demo");
        StatsReport report;
        try {
            long t0 = System.nanoTime();
            int partitions = Math.max(1, Math.min(8, documents / 30));
            spark.range(0, documents, 1, partitions).toDF()
                    .mapPartitions(new DemoCorpus(demo.getLong("seed")), Encoders.row(DemoCorpus.SCHEMA))
                    .write().mode("overwrite").parquet(corpus.toString());
            System.out.printf("generated %d documents in %.1f s: %s%n", documents, (System.nanoTime() - t0) / 1e9, corpus);

            Config st = config.getConfig("longdoc.stats");
            long[] buckets = st.getLongList("buckets").stream().mapToLong(Long::longValue).toArray();
            TokenStats.Budget budget = new TokenStats.Budget(st.getInt("context-tokens"), st.getInt("max-new-tokens"), st.getInt("template-tokens"));
            t0 = System.nanoTime();
            report = StatsStage.run(spark, new StatsStage.Settings(corpus.toString(), "parquet", "id", "text",
                    Path.of(tokenizer).toAbsolutePath().toString(), null, statsOut.toString(), budget, buckets, SparkSessions.modelCache(config)));
            System.out.printf("stats stage in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        } finally {
            spark.stop();
        }
        System.out.println(report.markdown());
        System.out.println("corpus:  " + corpus);
        System.out.println("report:  " + statsOut.resolve("report.html") + "  (open in a browser; also report.json, report.md)");

        int runDocs = args.getInt("run-documents") != null ? args.getInt("run-documents") : 24;
        Path sample = out.resolve("corpus-sample");
        spark = SparkSessions.create(config, "demo");
        try {
            spark.read().parquet(corpus.toString()).orderBy("id").limit(runDocs).write().mode("overwrite").parquet(sample.toString());
        } finally {
            spark.stop();
        }
        Path runOut = out.resolve("run");
        System.out.println("\nsummarising " + runDocs + " documents with " + model + " ...");
        int rc = Main.run(new String[] {"run", "--input", sample.toString(), "--model", model, "--task", "summarize",
            "--max-new-tokens", "24", "--force", "--keep-cols", "title", "--out", runOut.toString()});
        if (rc != 0) {
            return rc;
        }
        System.out.println("output:  " + runOut.resolve("output") + " (Parquet, one row per document with status)");
        System.out.println("summary: " + runOut.resolve("run-summary.json"));
        System.out.println("next:    deploy/longdoc run --input " + corpus + " --model DIR --out /tmp/my-run");
        return 0;
    }
}
