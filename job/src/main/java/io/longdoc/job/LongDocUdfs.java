package io.longdoc.job;

import com.typesafe.config.Config;
import io.longdoc.engine.constrain.JsonSchema;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.prompt.ChatFormat;
import io.longdoc.engine.prompt.PromptTemplate;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.runtime.GenerationResult;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.engine.truncation.MiddleTruncation;
import io.longdoc.udfs.DocumentPrompt;
import io.longdoc.udfs.EngineHolder;
import io.longdoc.udfs.ExtractedRows;
import io.longdoc.udfs.Generation;
import io.longdoc.udfs.TokenizerHolder;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.api.java.UDF2;
import org.apache.spark.sql.types.DataTypes;

/**
 * LongDoc as Spark SQL functions, on the same per-executor tokenizer and engine as the job:
 * {@code token_count(text)}, {@code middle_truncate(text, budget)}, {@code summarize(text)}, and
 * {@code extract_fields(text)} when longdoc.udf.schema names a JSON Schema.
 * summarize() submits to the executor's continuous-batching engine, so concurrent calls from all
 * task threads of an executor are batched together.
 *
 * <pre>{@code
 * SparkSession spark = SparkSession.builder().getOrCreate();
 * LongDocUdfs.register(spark, ConfigFactory.parseString("longdoc.udf.model = /models/Index-1.9B-32K")
 *         .withFallback(ConfigFactory.load()));
 * spark.sql("SELECT id, token_count(text) AS tokens, summarize(text) AS summary FROM docs").show();
 * }</pre>
 */
public final class LongDocUdfs {
    /**
     * The extract task's SQL name. Not {@code extract}: Spark parses {@code EXTRACT(YEAR FROM ts)}
     * into a call of the function named extract, so a function of that name would break it.
     */
    public static final String EXTRACT_FUNCTION = "extract_fields";

    private LongDocUdfs() {
    }

    public static void register(SparkSession spark, Config config) throws IOException {
        Config u = config.getConfig("longdoc.udf");
        if (!u.hasPath("model")) {
            throw new IllegalArgumentException("longdoc.udf.model is not set: the SQL functions need a model directory");
        }
        String model = Path.of(u.getString("model")).toAbsolutePath().toString();
        ModelConfig mc = ModelConfig.load(Path.of(model));
        PromptTemplate template = RunCommand.template(u.hasPath("template") ? u.getString("template") : null, mc, "summarize");
        ChatFormat format = ChatFormat.forTemplate(template, mc);
        int maxNew = u.hasPath("max-new-tokens") ? u.getInt("max-new-tokens") : template.maxNewTokens();
        int context = u.hasPath("context-tokens") ? u.getInt("context-tokens") : mc.contextLength();
        EngineSettings engine = EngineOptions.settings(config);
        SamplingParams sampling = new SamplingParams(maxNew, 0f, 0, 1f, template.repetitionPenalty(), 0, false, new int[0]);
        if (u.hasPath("schema")) {
            registerExtract(spark, config, model, mc, engine, context);
        }

        spark.udf().register("token_count", (UDF1<String, Integer>) text ->
                text == null ? null : TokenizerHolder.get(model).count(text), DataTypes.IntegerType);
        spark.udf().register("middle_truncate", (UDF2<String, Integer, String>) (text, budget) -> {
            if (text == null || budget == null) {
                return null;
            }
            Tokenizer tok = TokenizerHolder.get(model);
            return tok.decode(MiddleTruncation.document(tok.encode(text), budget, tok.sentencePiece()::byteValue).keptIds());
        }, DataTypes.StringType);
        spark.udf().register("summarize", (UDF1<String, String>) text -> {
            if (text == null) {
                return null;
            }
            Engine e = EngineHolder.get(model, io.longdoc.udfs.TaskGpu.settingsForTask(engine));
            DocumentPrompt prompt = new DocumentPrompt(e.tokenizer(), template, format, context, maxNew);
            try {
                GenerationResult r = e.submit(prompt.prompt(prompt.cut(e.tokenizer().encode(text))), sampling).get();
                return e.tokenizer().decode(r.contentIds());
            } catch (ExecutionException ex) {
                throw new IllegalStateException("summarize failed: " + ex.getCause(), ex.getCause());
            }
        }, DataTypes.StringType);
    }

    /**
     * {@code extract_fields(text)}: the struct of fields of longdoc.udf.schema, decoded under the schema's
     * constraint with the extract template (greedy; one retry with a fresh sampled seed when the
     * JSON does not close); null for null text; an error when the retry does not close either.
     */
    private static void registerExtract(SparkSession spark, Config config, String model, ModelConfig mc, EngineSettings engine, int context)
            throws IOException {
        Config u = config.getConfig("longdoc.udf");
        JsonSchema schema = JsonSchema.load(Path.of(u.getString("schema")));
        String templateName = u.hasPath("extract-template") ? u.getString("extract-template") : null;
        PromptTemplate template = RunCommand.template(templateName, mc, "extract").withSchema(schema.text());
        ChatFormat format = ChatFormat.forTemplate(template, mc);
        int maxNew = u.hasPath("max-new-tokens") ? u.getInt("max-new-tokens") : template.maxNewTokens();
        SamplingParams greedy = new SamplingParams(maxNew, 0f, 0, 1f, template.repetitionPenalty(), 0, false, new int[0]);
        float retryTemperature = (float) config.getDouble("longdoc.run.extract-retry-temperature");
        spark.udf().register(EXTRACT_FUNCTION, (UDF1<String, Row>) text -> {
            if (text == null) {
                return null;
            }
            Engine e = EngineHolder.get(model, io.longdoc.udfs.TaskGpu.settingsForTask(engine));
            DocumentPrompt prompt = new DocumentPrompt(e.tokenizer(), template, format, context, maxNew);
            int[] ids = prompt.prompt(prompt.cut(e.tokenizer().encode(text)));
            try {
                Generation.Attempt attempt = Generation.run(e, ids, greedy, schema, retryTemperature).get();
                if (attempt.jsonUnclosed()) {
                    throw new IllegalStateException("extract_fields: the JSON did not close within " + maxNew
                            + " new tokens, in 2 tries; raise longdoc.udf.max-new-tokens");
                }
                return ExtractedRows.parse(schema, e.tokenizer().decode(attempt.result().contentIds()));
            } catch (ExecutionException ex) {
                throw new IllegalStateException("extract_fields failed: " + ex.getCause(), ex.getCause());
            }
        }, ExtractedRows.structType(schema));
    }
}
