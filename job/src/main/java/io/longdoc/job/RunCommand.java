package io.longdoc.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import io.longdoc.engine.constrain.JsonSchema;
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
import io.longdoc.udfs.DocumentTaskFunction;
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
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(RunCommand.class);

    private RunCommand() {
    }

    static Args args() {
        return new Args("run", "--input PATH --model DIR --task summarize|extract [--schema FILE] --out DIR [options]")
                .option("input", "PATH", "document table (file or directory; local, hdfs://, s3a://)")
                .option("format", "FMT", "parquet | json | text (default parquet)")
                .option("id-col", "NAME", "id column (default: id)")
                .option("text-col", "NAME", "text column (default: text)")
                .option("keep-cols", "LIST", "input columns copied to the output, comma-separated")
                .option("model", "DIR", "Hugging Face model directory")
                .option("task", "NAME", "summarize (default) | extract")
                .option("template", "NAME|FILE", "index-zh, index-en, plain-en, extract-en, plain-extract, or a file with a {document} placeholder"
                        + " (default: index-zh / extract-en for Index models, plain-en / plain-extract otherwise)")
                .option("schema", "FILE", "extract: JSON Schema of the fields (object of string/number/integer/boolean/enum/array/object)")
                .option("out", "DIR", "output directory: report.*, output/ (Parquet), run-summary.json")
                .option("context-tokens", "N", "context window (default: the model's max_position_embeddings)")
                .option("max-new-tokens", "N", "tokens to generate per document (default: the template's)")
                .option("temperature", "T", "0 = greedy (default)")
                .option("seed", "S", "sampling seed (mixed with each row's id)")
                .option("backend", "B", "cpu | cuda | auto")
                .option("max-truncated-share", "X", "exit 3 before inference when more documents than this share would be truncated")
                .flag("resume", "keep the rows already in --out/output, compute only the missing ids")
                .flag("retry-errors", "with --resume: also recompute rows whose status is error (replacing them)")
                .flag("force", "overwrite an existing output, or resume although the settings changed");
    }

    static int run(Args args, Config config) throws Exception {
        args.defaults(config.getConfig("longdoc.run"));
        String task = args.get("task", "summarize");
        if (!task.equals("summarize") && !task.equals("extract")) {
            throw new UsageException("--task " + task + ": expected summarize or extract");
        }
        JsonSchema schema = null;
        if (task.equals("extract")) {
            if (!args.has("schema")) {
                throw new UsageException("run: --task extract needs --schema FILE (a JSON Schema of the fields to extract)");
            }
            try {
                schema = JsonSchema.load(Path.of(args.get("schema")));
            } catch (IllegalArgumentException e) {
                throw new UsageException("--schema: " + e.getMessage(), e);
            }
        } else if (args.onCommandLine("schema")) {
            throw new UsageException("run: --schema is for --task extract");   // a longdoc.run.schema default is just not used
        }
        float retryTemperature = (float) config.getDouble("longdoc.run.extract-retry-temperature");
        if (!(retryTemperature > 0)) {
            throw new UsageException("longdoc.run.extract-retry-temperature must be above 0 (a greedy retry would repeat the first try)");
        }
        String modelArg = SparkSessions.absolute(args.require("model"));
        String cache = SparkSessions.modelCache(config);
        Path modelDir;
        try {
            // A model on HDFS/S3 is copied to the local cache, here on the driver and once per executor.
            modelDir = Path.of(io.longdoc.udfs.ModelCache.localDir(modelArg, java.util.Map.of(), Path.of(cache)));
        } catch (java.io.UncheckedIOException e) {
            throw new UsageException("--model " + modelArg + ": " + e.getMessage(), e);
        }
        if (!Files.isDirectory(modelDir)) {
            throw new UsageException("--model " + modelDir + ": not a directory");
        }
        EngineOptions.checkBackend(args, config);
        ModelConfig model;
        Tokenizer tok;
        try {
            model = ModelConfig.load(modelDir);
            tok = Main.loadTokenizer(modelDir.toString());
        } catch (ModelFormatException e) {
            throw new UsageException(e.getMessage(), e);
        }
        PromptTemplate template = template(args.get("template"), model, task);
        if (schema != null) {
            template = template.withSchema(schema.text());
        }
        ChatFormat format = ChatFormat.forTemplate(template, model);
        int context = args.getInt("context-tokens") != null ? args.getInt("context-tokens") : model.contextLength();
        if (context > model.contextLength()) {
            throw new UsageException("--context-tokens " + context + " is more than the model's context of " + model.contextLength()
                    + " tokens: every longer document would fail");
        }
        int maxNew = args.getInt("max-new-tokens") != null ? args.getInt("max-new-tokens") : template.maxNewTokens();
        int[][] around = format.around(tok, template.system(), template.before(), template.after());
        int templateTokens = around[0].length + around[1].length;
        TokenStats.Budget budget = new TokenStats.Budget(context, maxNew, templateTokens);
        if (budget.promptBudget() < 0) {
            throw new UsageException(String.format(Locale.ROOT, "run: no room for the document: context %d − max new tokens %d − template %d < 0",
                    context, maxNew, templateTokens));
        }
        float temperature = args.getDouble("temperature") != null ? args.getDouble("temperature").floatValue() : 0f;
        long seed = args.getLong("seed") != null ? args.getLong("seed") : 0L;
        SamplingParams sampling;
        try {
            sampling = new SamplingParams(maxNew, temperature, 0, 1f, template.repetitionPenalty(), seed, false, new int[0]);
        } catch (IllegalArgumentException e) {
            throw new UsageException("run: " + e.getMessage(), e);
        }
        var engineSettings = EngineOptions.settings(args, config);
        List<String> keep = args.has("keep-cols") ? Arrays.stream(args.get("keep-cols").split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList() : List.of();
        // Kept columns sit beside the output's own: a name taken twice (Spark compares names
        // without case) would fail the write after the stats stage ran, so it is refused now.
        List<String> outputColumns = new java.util.ArrayList<>(List.of("id"));
        for (var f : io.longdoc.udfs.DocumentTaskFunction.resultColumns(schema).fields()) {
            outputColumns.add(f.name());
        }
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (String k : keep) {
            if (outputColumns.stream().anyMatch(k::equalsIgnoreCase)) {
                throw new UsageException("--keep-cols: '" + k + "' is also a column of the output (" + String.join(", ", outputColumns)
                        + "); rename it in the input to keep it");
            }
            if (!seen.add(k.toLowerCase(Locale.ROOT))) {
                throw new UsageException("--keep-cols: '" + k + "' is listed twice");
            }
        }
        Config in = config.getConfig("longdoc.input");
        String input = args.require("input"), fmt = args.get("format", in.getString("format"));
        String idCol = args.get("id-col", in.getString("id-col")), textCol = args.get("text-col", in.getString("text-col"));
        String out = args.require("out");
        Double gate = args.getDouble("max-truncated-share");

        boolean resume = args.has("resume"), retryErrors = args.has("retry-errors"), force = args.has("force");
        if (retryErrors && !resume) {
            throw new UsageException("--retry-errors reruns the error rows of a run being resumed: use it with --resume");
        }
        ObjectNode fingerprint = JSON.createObjectNode();
        fingerprint.put("model_fingerprint", ModelFingerprint.of(modelDir));
        fingerprint.put("template_hash", template.hash());
        fingerprint.put("template_tokens", templateTokens);
        fingerprint.put("context_tokens", context);
        fingerprint.put("max_new_tokens", maxNew);
        fingerprint.put("temperature", temperature);
        fingerprint.put("repetition_penalty", template.repetitionPenalty());
        fingerprint.put("seed", seed);
        fingerprint.put("truncation", "document-middle");
        fingerprint.put("task", task);
        // The input's columns as read: a resume that reads others would write rows of another shape.
        fingerprint.put("id_col", idCol);
        fingerprint.put("text_col", textCol);
        fingerprint.put("keep_cols", String.join(",", keep));
        if (schema != null) {
            // The schema decides the output's extracted column: a changed schema must not resume.
            fingerprint.put("schema_hash", io.longdoc.engine.prompt.PromptTemplate.sha(schema.text()));
            fingerprint.put("extract_retry_temperature", retryTemperature);
        }

        SparkSession spark = SparkSessions.create(config, "run");
        try {
            long t0 = System.nanoTime();
            org.apache.hadoop.fs.Path outDir = new org.apache.hadoop.fs.Path(out);
            org.apache.hadoop.fs.FileSystem fs = outDir.getFileSystem(spark.sparkContext().hadoopConfiguration());
            org.apache.hadoop.fs.Path outputDir = new org.apache.hadoop.fs.Path(outDir, "output");
            org.apache.hadoop.fs.Path fingerprintFile = new org.apache.hadoop.fs.Path(outDir, "run-fingerprint.json");
            boolean hasOutput = hasParquet(fs, outputDir);
            if (hasOutput && !resume && !force) {
                throw new UsageException("output " + outputDir + " already exists: use --resume to finish it, or --force to overwrite it");
            }
            if (resume && hasOutput && fs.exists(fingerprintFile) && !force) {
                JsonNode stored;
                try (var is = fs.open(fingerprintFile)) {
                    stored = JSON.readTree(is);
                }
                for (var it = fingerprint.fieldNames(); it.hasNext(); ) {
                    String k = it.next();
                    if (stored.get(k) == null || !fingerprint.get(k).asText().equals(stored.get(k).asText())) {
                        throw new UsageException("--resume: this run differs from the stored one in " + k + " (stored " + stored.get(k)
                                + ", now " + fingerprint.get(k) + "); use the same settings, or --force to resume anyway");
                    }
                }
            }

            long[] buckets = config.getLongList("longdoc.stats.buckets").stream().mapToLong(Long::longValue).toArray();
            StatsReport report = StatsStage.run(spark, new StatsStage.Settings(input, fmt, idCol, textCol, modelArg,
                    modelArg, out, budget, buckets, cache));
            StatsCommand.printSummary(report, out);
            if (gate != null && report.stats.shareOver > gate) {
                throw new GateTrippedException(String.format(Locale.ROOT,
                        "truncation gate tripped: %.4f of documents are over the %d-token budget, more than --max-truncated-share %s; no inference ran",
                        report.stats.shareOver, budget.promptBudget(), gate));
            }
            if (report.stats.max != null) {
                int longestPrompt = Math.min(report.stats.max, budget.promptBudget()) + templateTokens;
                EngineOptions.checkCpuKvCache(engineSettings, spark.sparkContext().isLocal(), model, longestPrompt + maxNew);
            }
            if (resume && hasOutput && report.duplicateIds > 0) {
                throw new UsageException("--resume needs unique ids, and the input has " + report.duplicateIds + " duplicate ids");
            }
            Dataset<Row> docs = InputTable.read(spark, input, fmt, idCol, textCol, keep);
            if (resume && hasOutput) {
                long nullIds = docs.where(col("id").isNull()).count();
                if (nullIds > 0) {
                    throw new UsageException("--resume needs an id on every row (it skips the ids already written), and " + nullIds
                            + " input rows have a null id");
                }
            }
            try (OutputStream os = fs.create(fingerprintFile, true)) {
                os.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(fingerprint));
            }

            long skipped = 0;
            Dataset<Row> kept = null;   // rows of the existing output that stay
            if (resume && hasOutput) {
                Dataset<Row> existing = spark.read().parquet(outputDir.toString());
                Dataset<Row> done = (retryErrors ? existing.where(col("status").equalTo("ok")) : existing).select("id").distinct();
                Dataset<Row> todo = docs.join(done, docs.col("id").equalTo(done.col("id")), "left_anti");
                long total = docs.count();
                docs = todo;
                skipped = total - todo.count();
                if (retryErrors) {
                    kept = existing.where(col("status").equalTo("ok"));
                }
            }
            DocumentTaskFunction.Settings settings = new DocumentTaskFunction.Settings(modelArg, engineSettings, template, format,
                    context, sampling, fingerprint.get("model_fingerprint").asText(), Math.max(1, engineSettings.maxSequences()),
                    SparkSessions.hadoopSettings(spark), cache, schema, retryTemperature);
            org.apache.spark.util.CollectionAccumulator<String> loads = new org.apache.spark.util.CollectionAccumulator<>();
            spark.sparkContext().register(loads, "engine loads");
            org.apache.spark.util.LongAccumulator rowsDone = spark.sparkContext().longAccumulator("rows done");
            org.apache.spark.util.LongAccumulator tokensDone = spark.sparkContext().longAccumulator("output tokens");
            Dataset<Row> results = docs.mapPartitions(new DocumentTaskFunction(settings, loads).withProgress(rowsDone, tokensDone),
                    Encoders.row(DocumentTaskFunction.outputSchema(docs.schema(), schema)));
            try (ProgressLog progressLog = new ProgressLog(report.stats.rows - skipped, rowsDone, tokensDone,
                    config.getInt("longdoc.run.progress-seconds"))) {
                org.apache.hadoop.fs.Path written = outputDir;
                if (kept != null) {
                    // Error rows are replaced: the new results and the rows that stay go to a fresh directory, swapped in at the end.
                    written = new org.apache.hadoop.fs.Path(outDir, "output.retry");
                    Dataset<Row> retried = results.unionByName(kept);
                    retried.write().mode("overwrite").parquet(written.toString());
                    org.apache.hadoop.fs.Path old = new org.apache.hadoop.fs.Path(outDir, "output.replaced");
                    fs.delete(old, true);
                    if (!fs.rename(outputDir, old) || !fs.rename(written, outputDir)) {
                        throw new IllegalStateException("could not swap " + written + " into " + outputDir);
                    }
                    fs.delete(old, true);
                } else {
                    results.write().mode(resume ? "append" : "overwrite").parquet(outputDir.toString());
                }
            }

            Dataset<Row> all = spark.read().parquet(outputDir.toString());
            Row totals = all.agg(count(lit(1)),
                    sum(when(col("status").equalTo("ok"), 1).otherwise(0)),
                    sum(when(col("truncated").equalTo(true), 1).otherwise(0)),
                    sum(col("input_tokens")), sum(col("kept_tokens")), sum(col("output_tokens")),
                    org.apache.spark.sql.functions.percentile(col("latency_ms"), lit(0.5)),
                    org.apache.spark.sql.functions.percentile(col("latency_ms"), lit(0.95))).first();
            double wall = (System.nanoTime() - t0) / 1e9;
            long rows = totals.getLong(0);
            ObjectNode summary = JSON.createObjectNode();
            ObjectNode r = summary.putObject("rows");
            r.put("total", rows);
            r.put("ok", rows == 0 ? 0 : totals.getLong(1));
            r.put("error", rows == 0 ? 0 : rows - totals.getLong(1));
            r.put("skipped_existing", skipped);
            ObjectNode t = summary.putObject("tokens");
            t.put("input", totals.isNullAt(3) ? 0 : totals.getLong(3));
            t.put("kept", totals.isNullAt(4) ? 0 : totals.getLong(4));
            t.put("output", totals.isNullAt(5) ? 0 : totals.getLong(5));
            summary.put("truncated_rows", rows == 0 ? 0 : totals.getLong(2));
            ObjectNode perExecutor = summary.putObject("engine_loads");
            for (String entry : loads.value()) {
                String[] kv = entry.split("=");
                int n = Integer.parseInt(kv[1]);
                if (!perExecutor.has(kv[0]) || perExecutor.get(kv[0]).asInt() < n) {
                    perExecutor.put(kv[0], n);
                }
            }
            ObjectNode latency = summary.putObject("latency_ms");
            latency.put("p50", totals.isNullAt(6) ? 0 : totals.getDouble(6));
            latency.put("p95", totals.isNullAt(7) ? 0 : totals.getDouble(7));
            summary.put("wall_seconds", wall);
            // Tokens generated by this run (every try of an extraction), not the rows an earlier run wrote.
            summary.put("output_tokens_per_second", tokensDone.value() / wall);
            summary.set("run", fingerprint);
            summary.put("model", modelDir.toString());
            summary.put("template", template.name());
            summary.put("output", outputDir.toString());
            org.apache.hadoop.fs.Path summaryPath = new org.apache.hadoop.fs.Path(outDir, "run-summary.json");
            try (OutputStream os = fs.create(summaryPath, true)) {
                os.write((JSON.writerWithDefaultPrettyPrinter().writeValueAsString(summary) + "\n").getBytes(StandardCharsets.UTF_8));
            }
            System.out.printf(Locale.ROOT, "run: %d rows (%d ok, %d errors, %d already done) in %.1f s; output %s%n", rows, r.get("ok").asLong(),
                    r.get("error").asLong(), skipped, wall, outputDir);
        } finally {
            spark.stop();
        }
        return 0;
    }

    /**
     * Logs rows and tokens done, throughput and ETA every few seconds while inference runs. The
     * counts are Spark accumulators (also in the Spark UI); they advance as tasks finish.
     */
    static final class ProgressLog implements AutoCloseable {
        private final java.util.concurrent.ScheduledExecutorService timer;

        ProgressLog(long total, org.apache.spark.util.LongAccumulator rows, org.apache.spark.util.LongAccumulator tokens, int seconds) {
            long start = System.nanoTime();
            timer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "longdoc-progress");
                t.setDaemon(true);
                return t;
            });
            timer.scheduleAtFixedRate(() -> {
                double elapsed = (System.nanoTime() - start) / 1e9;
                long done = rows.value();
                double rate = done / Math.max(elapsed, 1e-9);
                String eta = done == 0 ? "unknown" : String.format(Locale.ROOT, "%.0f s", (total - done) / rate);
                LOG.info(String.format(Locale.ROOT, "progress: %d/%d rows (%.1f%%), %d output tokens, %.2f rows/s, %.1f tokens/s, ETA %s",
                        done, total, total == 0 ? 100.0 : 100.0 * done / total, tokens.value(), rate, tokens.value() / elapsed, eta));
            }, seconds, seconds, java.util.concurrent.TimeUnit.SECONDS);
        }

        @Override
        public void close() {
            timer.shutdownNow();
        }
    }

    private static boolean hasParquet(org.apache.hadoop.fs.FileSystem fs, org.apache.hadoop.fs.Path dir) throws java.io.IOException {
        if (!fs.exists(dir)) {
            return false;
        }
        for (var st : fs.listStatus(dir)) {
            if (st.getPath().getName().endsWith(".parquet")) {
                return true;
            }
        }
        return false;
    }

    static PromptTemplate template(String name, ModelConfig model, String task) throws java.io.IOException {
        if (name == null) {
            boolean extract = task.equals("extract");
            return PromptTemplate.builtIn(model.isIndex() ? (extract ? "extract-en" : "index-zh") : (extract ? "plain-extract" : "plain-en"));
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
