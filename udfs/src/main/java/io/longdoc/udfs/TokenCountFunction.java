package io.longdoc.udfs;

import io.longdoc.engine.tokenizer.Tokenizer;
import java.util.Iterator;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Rows of {@code (id, text)} to rows of {@code (id, tokens, chars)}, one at a time as the
 * partition streams by. A null text gives null counts; the tokenizer is the executor's shared one.
 */
public final class TokenCountFunction implements MapPartitionsFunction<Row, Row> {
    public static final StructType SCHEMA = new StructType()
            .add("id", DataTypes.StringType, true)
            .add("tokens", DataTypes.IntegerType, true)
            .add("chars", DataTypes.IntegerType, true);

    private final String tokenizerPath;
    private final java.util.Map<String, String> hadoopSettings;
    private final String cacheRoot;

    /** @param tokenizerPath a tokenizer.model or model directory; a remote directory is copied to the executor's model cache */
    public TokenCountFunction(String tokenizerPath, java.util.Map<String, String> hadoopSettings, String cacheRoot) {
        this.tokenizerPath = tokenizerPath;
        this.hadoopSettings = new java.util.HashMap<>(hadoopSettings);
        this.cacheRoot = cacheRoot;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
        Tokenizer tokenizer = TokenizerHolder.get(ModelCache.localDir(tokenizerPath, hadoopSettings, java.nio.file.Path.of(cacheRoot)));
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return rows.hasNext();
            }

            @Override
            public Row next() {
                Row r = rows.next();
                String id = r.isNullAt(0) ? null : r.getString(0);
                if (r.isNullAt(1)) {
                    return RowFactory.create(id, null, null);
                }
                String text = r.getString(1);
                return RowFactory.create(id, tokenizer.count(text), text.length());
            }
        };
    }
}
