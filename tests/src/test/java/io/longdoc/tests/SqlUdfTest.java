package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.ConfigFactory;
import io.longdoc.engine.prompt.ChatFormat;
import io.longdoc.engine.prompt.PromptTemplate;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.engine.truncation.MiddleTruncation;
import io.longdoc.job.LongDocUdfs;
import io.longdoc.udfs.DocumentPrompt;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/** The README's Spark SQL example, run: token_count, middle_truncate and summarize. */
class SqlUdfTest {
    @Test
    void sqlFunctionsGiveWhatTheEngineGives() throws Exception {
        Path model = TestPaths.shared("models/stories260k");
        List<String> texts = List.of("Once upon a time, there was a cat.", "Lily went to the park with her mom and saw a big dog.");
        SparkSession spark = SparkSession.builder().master("local[2]").config("spark.ui.enabled", false).getOrCreate();
        List<Row> rows;
        try {
            LongDocUdfs.register(spark, ConfigFactory.parseString("longdoc.udf.model = \"" + model + "\"\nlongdoc.udf.max-new-tokens = 12\n"
                    + "longdoc.udf.template = plain-en").withFallback(ConfigFactory.parseResources("application.conf")).resolve());
            StructType schema = new StructType().add("id", DataTypes.IntegerType).add("text", DataTypes.StringType);
            spark.createDataFrame(List.of(RowFactory.create(0, texts.get(0)), RowFactory.create(1, texts.get(1)), RowFactory.create(2, null)), schema)
                    .createOrReplaceTempView("docs");
            rows = spark.sql("SELECT id, token_count(text), middle_truncate(text, 6), summarize(text) FROM docs ORDER BY id").collectAsList();
        } finally {
            spark.stop();
        }
        Tokenizer tok = Tokenizer.load(model);
        PromptTemplate template = PromptTemplate.builtIn("plain-en");
        try (Engine engine = Engine.load(model, EngineSettings.defaults())) {
            for (int i = 0; i < texts.size(); i++) {
                Row r = rows.get(i);
                int[] ids = tok.encode(texts.get(i));
                assertEquals(ids.length, r.getInt(1));
                assertEquals(tok.decode(MiddleTruncation.document(ids, 6, tok.sentencePiece()::byteValue).keptIds()), r.getString(2));
                DocumentPrompt p = new DocumentPrompt(tok, template, ChatFormat.PLAIN, 512, 12);
                var direct = engine.submit(p.prompt(p.cut(ids)), new SamplingParams(12, 0f, 0, 1f, template.repetitionPenalty(), 0, false, new int[0])).get();
                assertEquals(tok.decode(direct.contentIds()), r.getString(3));
            }
        }
        assertEquals(true, rows.get(2).isNullAt(1) && rows.get(2).isNullAt(3));
    }
}
