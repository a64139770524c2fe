package io.longdoc.job;

import com.typesafe.config.Config;
import io.longdoc.engine.model.ModelShape;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.GateTrippedException;
import io.longdoc.job.cli.UsageException;
import io.longdoc.job.stats.StatsReport;
import io.longdoc.job.stats.StatsStage;
import io.longdoc.job.stats.TokenStats;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.SparkSession;

/** {@code longdoc stats}: the token-length report and the truncation gate. */
public final class StatsCommand {
    private StatsCommand() {
    }

    static Args args() {
        return new Args("stats", "--input PATH --tokenizer PATH|--model DIR --out DIR [options]")
                .option("input", "PATH", "document table (file or directory; local, hdfs://, s3a://)")
                .option("format", "FMT", "parquet | json | text (default from config: parquet)")
                .option("id-col", "NAME", "id column (default: id)")
                .option("text-col", "NAME", "text column (default: text)")
                .option("tokenizer", "PATH", "tokenizer.model or model directory")
                .option("model", "DIR", "model directory: its tokenizer, context, and a prefill FLOPs estimate")
                .option("out", "DIR", "where report.json/.md/.html and token_counts/ go")
                .option("context-tokens", "N", "context window (default 32768, or the model's max_position_embeddings)")
                .option("max-new-tokens", "N", "tokens reserved for generation (default 512)")
                .option("template-tokens", "N", "tokens of the prompt template around each document (default 0)")
                .option("buckets", "LIST", "histogram lower edges (default 0,4096,8192,16384,32768)")
                .option("max-truncated-share", "X", "exit 3 after the report when the share of documents over budget exceeds X");
    }

    /** A local copy of a model or tokenizer path (remote ones are copied to the cache); a failed copy is bad input. */
    private static String local(String path, String cache, String option) {
        try {
            return io.longdoc.udfs.ModelCache.localDir(path, java.util.Map.of(), Path.of(cache));
        } catch (java.io.UncheckedIOException e) {
            throw new UsageException(option + " " + path + ": " + e.getMessage(), e);
        }
    }

    static StatsStage.Settings settings(Args args, Config config) {
        Config in = config.getConfig("longdoc.input");
        Config st = config.getConfig("longdoc.stats");
        String model = args.get("model");
        String tokenizer = args.get("tokenizer");
        if (tokenizer == null && config.hasPath("longdoc.tokenizer.path")) {
            tokenizer = config.getString("longdoc.tokenizer.path");
        }
        if (tokenizer == null) {
            tokenizer = model;
        }
        if (tokenizer == null) {
            throw new UsageException("stats: give --tokenizer PATH or --model DIR");
        }
        String cache = SparkSessions.modelCache(config);
        Integer context = args.getInt("context-tokens");
        if (context == null && model != null) {
            ModelShape shape = shapeOf(local(model, cache, "--model"));
            context = shape.maxPositionEmbeddings() > 0 ? shape.maxPositionEmbeddings() : null;
        }
        if (context == null) {
            context = st.getInt("context-tokens");
        }
        int maxNew = args.getInt("max-new-tokens") != null ? args.getInt("max-new-tokens") : st.getInt("max-new-tokens");
        int template = args.getInt("template-tokens") != null ? args.getInt("template-tokens") : st.getInt("template-tokens");
        if (context <= 0 || maxNew < 0 || template < 0) {
            throw new UsageException("stats: --context-tokens must be positive and --max-new-tokens, --template-tokens not negative");
        }
        TokenStats.Budget budget = new TokenStats.Budget(context, maxNew, template);
        if (budget.promptBudget() < 0) {
            throw new UsageException(String.format(Locale.ROOT, "stats: no room for the document: context %d − max new tokens %d − template %d < 0",
                    context, maxNew, template));
        }
        long[] buckets = args.has("buckets") ? parseBuckets(args.get("buckets"))
                : st.getLongList("buckets").stream().mapToLong(Long::longValue).toArray();
        try {
            TokenStats.validateBuckets(buckets);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--buckets: " + e.getMessage());
        }
        Main.loadTokenizer(local(tokenizer, cache, "--tokenizer")); // fail fast, on the driver
        return new StatsStage.Settings(args.require("input"), args.get("format", in.getString("format")),
                args.get("id-col", in.getString("id-col")), args.get("text-col", in.getString("text-col")),
                SparkSessions.absolute(tokenizer), model == null ? null : SparkSessions.absolute(model),
                args.require("out"), budget, buckets, cache);
    }

    static int run(Args args, Config config) throws Exception {
        StatsStage.Settings s = settings(args, config);
        Double gate = args.getDouble("max-truncated-share");
        if (gate == null && config.hasPath("longdoc.stats.max-truncated-share")) {
            gate = config.getDouble("longdoc.stats.max-truncated-share");
        }
        SparkSession spark = SparkSessions.create(config, "stats");
        StatsReport report;
        try {
            report = StatsStage.run(spark, s);
        } finally {
            spark.stop();
        }
        printSummary(report, s.out());
        if (gate != null && report.stats.shareOver > gate) {
            throw new GateTrippedException(String.format(Locale.ROOT,
                    "truncation gate tripped: %.4f of documents are over the %d-token budget, more than --max-truncated-share %s",
                    report.stats.shareOver, report.stats.budget.promptBudget(), gate));
        }
        return 0;
    }

    static void printSummary(StatsReport r, String out) {
        TokenStats s = r.stats;
        System.out.printf(Locale.ROOT, "rows %d (null %d, empty %d, duplicate ids %d); tokens total %d, p50 %s, p99 %s, max %s%n",
                s.rows, s.nullRows, s.emptyRows, r.duplicateIds, s.total, s.percentiles.get(50), s.percentiles.get(99), s.max);
        System.out.printf(Locale.ROOT, "budget %d tokens: %d documents over (%.2f%%), %d tokens dropped%n",
                s.budget.promptBudget(), s.rowsOver, 100 * s.shareOver, s.tokensDropped);
        System.out.println("report: " + out + "/report.html (also report.json, report.md, token_counts/)");
    }

    private static ModelShape shapeOf(String model) {
        if (!Files.isDirectory(Path.of(model))) {
            throw new UsageException("--model " + model + ": not a directory");
        }
        try {
            return ModelShape.fromModelDir(Path.of(model));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--model: " + e.getMessage(), e);
        }
    }

    static long[] parseBuckets(String list) {
        List<String> parts = Arrays.asList(list.split(","));
        try {
            return parts.stream().map(String::trim).mapToLong(Long::parseLong).toArray();
        } catch (NumberFormatException e) {
            throw new UsageException("--buckets must be comma-separated integers, got '" + list + "'");
        }
    }
}
