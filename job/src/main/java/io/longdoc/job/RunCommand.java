package io.longdoc.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.ModelFingerprint;
import io.longdoc.engine.model.ModelFormatException;
import io.longdoc.engine.prompt.ChatFormat;
import io.longdoc.engine.prompt.PromptTemplate;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.GateTrippedException;
import io.longdoc.job.cli.UsageException;
import io.longdoc.job.stats.StatsReport;
import io.longdoc.job.stats.StatsStage;
import io.longdoc.job.stats.TokenStats;
import io.longdoc.udfs.EngineHolder;
import io.longdoc.udfs.SummarizeFunction;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
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
 * {@code longdoc run}: the whole pipeline on Spark — token statistics and the truncation gate,
 * then inference with one engine per executor JVM, then Parquet output with one row per input
 * row and its status, and {@code run-summary.json}.
 */
public final class RunCommand {
    private static final ObjectMapper JSON = new ObjectMapper();

    private RunCommand() {
    }

    static Args args() {
        return new Args("run", "--input PATH --model DIR --task summarize --out DIR [options]")
                .option("input", "PATH", "document table (file or directory; local, hdfs://, s3a://)")
                .option("format", "FMT", "parquet | json | text (default parquet)")
                .option("id-col", "NAME", "id column (default: id)")
                .option("text-col", "NAME", "text column (default: text)")
                .option("keep-cols", "LIST", "input columns copied to the output, comma-separated")
                .option("model", "DIR", "Hugging Face model directory")
                .option("task", "NAME", "summarize (extract is not built yet)")
                .option("template", "NAME|FILE", "index-zh, index-en, plain-en, or a file with a {document} placeholder (default: index-zh for Index, plain-en otherwise)")
                .option("out", "DIR", "output directory: report.*, output/ (Parquet), run-summary.json")
                .option("context-tokens", "N", "context window (default: the model's max_position_embeddings)")
                .option("max-new-tokens", "N", "tokens to generate per document (default: the template's)")
                .option("temperature", "T", "0 = greedy (default)")
                .option("seed", "S", "sampling seed (mixed with each row's id)")
                .option("backend", "B", "cpu | cuda | auto")
                .option("max-truncated-share", "X", "exit 3 before inference when more documents than this share would be truncated");
    }

    static int run(Args args, Config config) throws Exception {
        String task = args.get("task", "summarize");
        if (!task.equals("summarize")) {
            throw new UsageException("--task " + task + ": only summarize is built so far");
        }
        Path modelDir = Path.of(args.require("model")).toAbsolutePath();
        if (!Files.isDirectory(modelDir)) {
            throw new UsageException("--model " + modelDir + ": not a directory");
        }
        String backend = args.get("backend", config.getString("longdoc.engine.backend"));
        if (backend.equals("cuda")) {
            throw new UsageException("--backend cuda: no CUDA backend in this build (use cpu or auto)");
        }
        ModelConfig model;
        Tokenizer tok;
        try {
            model = ModelConfig.load(modelDir);
            tok = Main.loadTokenizer(modelDir.toString());
        } catch (ModelFormatException e) {
            throw new UsageException(e.getMessage(), e);
        }
        PromptTemplate template = template(args.get("template"), model);
        ChatFormat format = template.name().startsWith("plain") ? ChatFormat.PLAIN : ChatFormat.of(model);
        int context = args.getInt("context-tokens") != null ? args.getInt("context-tokens") : model.contextLength();
        int maxNew = args.getInt("max-new-tokens") != null ? args.getInt("max-new-tokens") : template.maxNewTokens();
        int[][] around = format.around(tok, template.system(), template.before(), template.after());
        int templateTokens = around[0].length + around[1].length;
        TokenStats.Budget budget = new TokenStats.Budget(context, maxNew, templateTokens);
        if (budget.promptBudget() < 0) {
            throw new UsageException(String.format(Locale.ROOT, "run: no room for the document: context %d − max new tokens %d − template %d < 0",
                    context, maxNew, templateTokens));
        }
        float temperature = args.getDouble("temperature") != null ? args.getDouble("temperature").floatValue() : 0f;
        long seed = args.has("seed") ? Long.parseLong(args.get("seed")) : 0L;
        SamplingParams sampling = new SamplingParams(maxNew, temperature, 0, 1f, template.repetitionPenalty(), seed, false, new int[0]);
        var engineSettings = EngineOptions.settings(config);
        List<String> keep = args.has("keep-cols") ? Arrays.stream(args.get("keep-cols").split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList() : List.of();
        Config in = config.getConfig("longdoc.input");
        String input = args.require("input"), fmt = args.get("format", in.getString("format"));
        String idCol = args.get("id-col", in.getString("id-col")), textCol = args.get("text-col", in.getString("text-col"));
        String out = args.require("out");
        Double gate = args.getDouble("max-truncated-share");

        SparkSession spark = SparkSessions.create(config, "run");
        try {
            long t0 = System.nanoTime();
            long[] buckets = config.getLongList("longdoc.stats.buckets").stream().mapToLong(Long::longValue).toArray();
            StatsReport report = StatsStage.run(spark, new StatsStage.Settings(input, fmt, idCol, textCol, modelDir.toString(),
                    modelDir.toString(), out, budget, buckets));
            StatsCommand.printSummary(report, out);
            if (gate != null && report.stats.shareOver > gate) {
                throw new GateTrippedException(String.format(Locale.ROOT,
                        "truncation gate tripped: %.4f of documents are over the %d-token budget, more than --max-truncated-share %s; no inference ran",
                        report.stats.shareOver, budget.promptBudget(), gate));
            }
            Dataset<Row> docs = InputTable.read(spark, input, fmt, idCol, textCol, keep);
            SummarizeFunction.Settings settings = new SummarizeFunction.Settings(modelDir.toString(), engineSettings, template, format,
                    context, sampling, ModelFingerprint.of(modelDir), Math.max(1, engineSettings.maxSequences()));
            String outputPath = new org.apache.hadoop.fs.Path(out, "output").toString();
            docs.mapPartitions(new SummarizeFunction(settings), Encoders.row(SummarizeFunction.outputSchema(docs.schema())))
                    .write().mode("overwrite").parquet(outputPath);

            Row totals = spark.read().parquet(outputPath).agg(count(lit(1)),
                    sum(when(col("status").equalTo("ok"), 1).otherwise(0)),
                    sum(when(col("truncated").equalTo(true), 1).otherwise(0)),
                    sum(col("output_tokens"))).first();
            ObjectNode summary = JSON.createObjectNode();
            long rows = totals.getLong(0);
            summary.put("rows", rows);
            summary.put("ok", rows == 0 ? 0 : totals.getLong(1));
            summary.put("errors", rows == 0 ? 0 : rows - totals.getLong(1));
            summary.put("truncated", rows == 0 ? 0 : totals.getLong(2));
            summary.put("output_tokens", totals.isNullAt(3) ? 0 : totals.getLong(3));
            summary.put("seconds", (System.nanoTime() - t0) / 1e9);
            summary.put("model", modelDir.toString());
            summary.put("model_fingerprint", settings.modelFingerprint());
            summary.put("template", template.name());
            summary.put("template_hash", template.hash());
            summary.put("template_tokens", templateTokens);
            summary.put("context_tokens", context);
            summary.put("max_new_tokens", maxNew);
            summary.put("engine_loads_in_driver_jvm", EngineHolder.loads());
            summary.put("output", outputPath);
            String text = JSON.writerWithDefaultPrettyPrinter().writeValueAsString(summary) + "\n";
            org.apache.hadoop.fs.Path summaryPath = new org.apache.hadoop.fs.Path(out, "run-summary.json");
            try (OutputStream os = summaryPath.getFileSystem(spark.sparkContext().hadoopConfiguration()).create(summaryPath, true)) {
                os.write(text.getBytes(StandardCharsets.UTF_8));
            }
            System.out.printf(Locale.ROOT, "run: %d rows (%d ok, %d errors) in %.1f s; output %s%n", rows, summary.get("ok").asLong(),
                    summary.get("errors").asLong(), summary.get("seconds").asDouble(), outputPath);
        } finally {
            spark.stop();
        }
        return 0;
    }

    static PromptTemplate template(String name, ModelConfig model) throws java.io.IOException {
        if (name == null) {
            return PromptTemplate.builtIn(model.isIndex() ? "index-zh" : "plain-en");
        }
        if (PromptTemplate.BUILT_IN.containsKey(name)) {
            return PromptTemplate.builtIn(name);
        }
        Path file = Path.of(name);
        if (!Files.isRegularFile(file)) {
            throw new UsageException("--template " + name + ": neither a built-in template (" + String.join(", ", PromptTemplate.BUILT_IN.keySet()) + ") nor a file");
        }
        try {
            return PromptTemplate.fromFile(file);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--template: " + e.getMessage());
        }
    }
}
