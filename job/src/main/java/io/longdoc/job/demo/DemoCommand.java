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
        return new Args("demo", "[--tokenizer PATH] [--out DIR] [--documents N]")
                .option("tokenizer", "PATH", "tokenizer.model or model directory (default: the Index stand-in from ../shared)")
                .option("out", "DIR", "where the corpus and the report go (default: demo-out)")
                .option("documents", "N", "number of documents to generate (default 240)");
    }

    public static int run(Args args, Config config) throws Exception {
        Config demo = config.getConfig("longdoc.demo");
        String tokenizer = args.get("tokenizer");
        if (tokenizer == null) {
            tokenizer = findSharedTokenizer();
        }
        Main.loadTokenizer(tokenizer);
        int documents = args.getInt("documents") != null ? args.getInt("documents") : demo.getInt("documents");
        if (documents <= 0) {
            throw new UsageException("--documents must be positive");
        }
        Path out = Path.of(args.get("out", demo.getString("out"))).toAbsolutePath();
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
                    Path.of(tokenizer).toAbsolutePath().toString(), null, statsOut.toString(), budget, buckets));
            System.out.printf("stats stage in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        } finally {
            spark.stop();
        }
        System.out.println(report.markdown());
        System.out.println("corpus:  " + corpus);
        System.out.println("report:  " + statsOut.resolve("report.html") + "  (open in a browser; also report.json, report.md)");
        System.out.println("next:    deploy/longdoc stats --input " + corpus + " --tokenizer " + tokenizer + " --out /tmp/my-report");
        return 0;
    }

    /** The chinese-llama2 tokenizer (closest public stand-in for Index-1.9B's) or LLaMA-2's, from ../shared. */
    static String findSharedTokenizer() {
        List<Path> candidates = new ArrayList<>();
        String shared = System.getenv("LONGDOC_SHARED");
        if (shared != null) {
            candidates.add(Path.of(shared));
        }
        String home = System.getProperty("longdoc.home");
        if (home != null) {
            candidates.add(Path.of(home).resolve("../shared"));
        }
        candidates.add(Path.of("../shared"));
        for (Path root : candidates) {
            for (String name : new String[] {"chinese-llama2", "llama2"}) {
                Path p = root.resolve("tokenizers").resolve(name).resolve("tokenizer.model");
                if (Files.isRegularFile(p)) {
                    return p.normalize().toAbsolutePath().toString();
                }
            }
        }
        throw new UsageException("demo needs a tokenizer: pass --tokenizer PATH (the tokenizer.model or directory of the model you will run)");
    }
}
