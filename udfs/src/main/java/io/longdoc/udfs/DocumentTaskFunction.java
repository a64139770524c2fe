package io.longdoc.udfs;

import io.longdoc.engine.constrain.JsonSchema;
import io.longdoc.engine.prompt.ChatFormat;
import io.longdoc.engine.prompt.PromptTemplate;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.runtime.GenerationResult;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.engine.truncation.MiddleTruncation;
import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The summarize and extract tasks on an executor: each row of {@code (id, text, kept columns...)} becomes one
 * output row with its status. The document is truncated in the middle to its budget (the template
 * stays whole), submitted to the executor's shared engine, and emitted when done; at most
 * {@code inFlight} documents of a task are in the engine at once, so a partition streams through
 * in bounded memory. A row that fails (null text, an engine error on it) comes out with status
 * {@code error} and its message; the rest of the partition carries on.
 *
 * <p>Extract (a schema in the settings): decoding is constrained to JSON valid for the schema
 * ({@link Generation}, with its one retry), and the text is parsed into the {@code extracted}
 * struct column; a JSON that does not close on the retry either gives the row status error.
 */
public final class DocumentTaskFunction implements MapPartitionsFunction<Row, Row> {
    /** Everything a task needs, shipped from the driver. */
    public record Settings(String modelDir, EngineSettings engine, PromptTemplate template, ChatFormat format, int contextTokens,
                           SamplingParams sampling, String modelFingerprint, int inFlight,
                           java.util.HashMap<String, String> hadoopSettings, String cacheRoot,
                           JsonSchema schema, float retryTemperature) implements Serializable {
        /** Summarize settings (no schema). */
        public Settings(String modelDir, EngineSettings engine, PromptTemplate template, ChatFormat format, int contextTokens,
                        SamplingParams sampling, String modelFingerprint, int inFlight,
                        java.util.HashMap<String, String> hadoopSettings, String cacheRoot) {
            this(modelDir, engine, template, format, contextTokens, sampling, modelFingerprint, inFlight, hadoopSettings, cacheRoot, null, 0f);
        }
    }

    /** Output columns after {@code id} and the kept columns; {@code extracted} only for extract (schema not null). */
    public static StructType resultColumns(JsonSchema schema) {
        StructType t = new StructType().add("output", DataTypes.StringType, true);
        if (schema != null) {
            t = t.add("extracted", ExtractedRows.structType(schema), true);
        }
        return t
                .add("status", DataTypes.StringType, false)
                .add("error", DataTypes.StringType, true)
                .add("input_tokens", DataTypes.IntegerType, true)
                .add("kept_tokens", DataTypes.IntegerType, true)
                .add("dropped_tokens", DataTypes.IntegerType, true)
                .add("truncated", DataTypes.BooleanType, true)
                .add("output_tokens", DataTypes.IntegerType, true)
                .add("finish_reason", DataTypes.StringType, true)
                .add("latency_ms", DataTypes.LongType, true)
                .add("model_fingerprint", DataTypes.StringType, false)
                .add("template_hash", DataTypes.StringType, false)
                .add("seed", DataTypes.LongType, false);
    }

    /** id, the kept columns (as in the input), then {@link #resultColumns}. */
    public static StructType outputSchema(StructType input, JsonSchema schema) {
        StructType out = new StructType().add("id", DataTypes.StringType, true);
        for (int i = 2; i < input.fields().length; i++) {
            StructField f = input.fields()[i];
            out = out.add(f.name(), f.dataType(), true);
        }
        for (StructField f : resultColumns(schema).fields()) {
            out = out.add(f);
        }
        return out;
    }

    private final Settings s;
    private final org.apache.spark.util.CollectionAccumulator<String> engineLoads;
    private org.apache.spark.util.LongAccumulator rowsDone, tokensDone;

    /** Counts finished rows and generated tokens into these (for the driver's progress log). */
    public DocumentTaskFunction withProgress(org.apache.spark.util.LongAccumulator rows, org.apache.spark.util.LongAccumulator tokens) {
        this.rowsDone = rows;
        this.tokensDone = tokens;
        return this;
    }

    /**
     * @param engineLoads receives "executorId=loads" from every task, so the driver can report
     *     engine loads per executor JVM (null: not reported)
     */
    public DocumentTaskFunction(Settings settings, org.apache.spark.util.CollectionAccumulator<String> engineLoads) {
        this.s = settings;
        this.engineLoads = engineLoads;
    }

    /** A document in the engine, with what its output row needs. */
    private record Pending(Row input, long seed, int inputTokens, MiddleTruncation.Result cut,
                           CompletableFuture<Generation.Attempt> result, String error) {
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
        String localModel = ModelCache.localDir(s.modelDir(), s.hadoopSettings(), java.nio.file.Path.of(s.cacheRoot()));
        EngineSettings engineSettings = TaskGpu.settingsForTask(s.engine());
        Engine engine = EngineHolder.get(localModel, engineSettings);
        if (engineLoads != null) {
            org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
            engineLoads.add((env == null ? "driver" : env.executorId()) + "=" + EngineHolder.loads(localModel, engineSettings));
        }
        Tokenizer tok = engine.tokenizer();
        DocumentPrompt documentPrompt = new DocumentPrompt(tok, s.template(), s.format(), s.contextTokens(), s.sampling().maxNewTokens());
        String templateHash = s.template().hash();
        int resultWidth = resultColumns(s.schema()).size();   // once per partition, not per row
        ArrayDeque<Pending> window = new ArrayDeque<>();

        return new Iterator<>() {
            private void fill() {
                while (window.size() < s.inFlight() && rows.hasNext()) {
                    window.add(submit(rows.next()));
                }
            }

            private Pending submit(Row row) {
                String id = row.isNullAt(0) ? null : row.getString(0);
                long seed = seedFor(id);
                if (row.isNullAt(1)) {
                    return new Pending(row, seed, 0, null, null, "text is null");
                }
                try {
                    int[] doc = tok.encode(row.getString(1));
                    MiddleTruncation.Result cut = documentPrompt.cut(doc);
                    int[] prompt = documentPrompt.prompt(cut);
                    return new Pending(row, seed, doc.length, cut, generate(prompt, seed), null);
                } catch (RuntimeException e) {
                    return new Pending(row, seed, 0, null, null, e.toString());
                }
            }

            private CompletableFuture<Generation.Attempt> generate(int[] prompt, long seed) {
                return Generation.run(engine, prompt, s.sampling().withSeed(seed), s.schema(), s.retryTemperature());
            }

            @Override
            public boolean hasNext() {
                fill();
                return !window.isEmpty();
            }

            @Override
            public Row next() {
                fill();
                if (window.isEmpty()) {
                    throw new NoSuchElementException();
                }
                return toRow(window.poll());
            }

            private Row toRow(Pending p) {
                Object[] values = new Object[p.input.length() - 1 + resultWidth];
                int k = 0;
                values[k++] = p.input.isNullAt(0) ? null : p.input.getString(0);
                for (int i = 2; i < p.input.length(); i++) {
                    values[k++] = p.input.get(i);
                }
                Generation.Attempt attempt = null;
                String error = p.error;
                if (error == null) {
                    try {
                        attempt = p.result.get();
                    } catch (ExecutionException e) {
                        error = String.valueOf(e.getCause());
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        error = "interrupted";
                    }
                }
                GenerationResult r = attempt == null ? null : attempt.result();
                String output = r == null ? null : tok.decode(r.contentIds());
                Row extracted = null;
                if (r != null && s.schema() != null) {
                    if (attempt.jsonUnclosed()) {
                        error = "the JSON did not close within " + r.outputIds().length + " new tokens, in " + attempt.tries()
                                + " tries (the second with a fresh seed); raise --max-new-tokens";
                    } else {
                        try {
                            extracted = ExtractedRows.parse(s.schema(), output);
                        } catch (IllegalArgumentException e) {
                            error = "extracted JSON does not fit the schema: " + e.getMessage();
                        }
                    }
                }
                values[k++] = output;
                if (s.schema() != null) {
                    values[k++] = extracted;
                }
                values[k++] = error == null ? "ok" : "error";
                values[k++] = error;
                values[k++] = p.cut == null ? null : p.inputTokens;
                values[k++] = p.cut == null ? null : p.cut.kept();
                values[k++] = p.cut == null ? null : p.cut.dropped();
                values[k++] = p.cut == null ? null : p.cut.truncated();
                values[k++] = r == null ? null : r.outputIds().length;
                values[k++] = r == null ? null : r.finishReason();
                values[k++] = r == null ? null : attempt.nanos() / 1_000_000;
                values[k++] = s.modelFingerprint();
                values[k++] = templateHash;
                values[k] = p.seed;
                if (rowsDone != null) {
                    rowsDone.add(1);
                    tokensDone.add(attempt == null ? 0 : attempt.tokens());   // every attempt's tokens: the work done
                }
                return RowFactory.create(values);
            }
        };
    }

    /** The sampling seed of a row: the run's seed mixed with its id, so reruns reproduce it. */
    long seedFor(String id) {
        long h = s.sampling().seed() ^ 0x9E3779B97F4A7C15L;
        if (id != null) {
            for (int i = 0; i < id.length(); i++) {
                h = (h ^ id.charAt(i)) * 0x100000001B3L;
            }
        }
        return h ^ (h >>> 31);
    }
}
