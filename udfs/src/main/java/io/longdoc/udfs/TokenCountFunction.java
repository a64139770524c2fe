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

    public TokenCountFunction(String tokenizerPath) {
        this.tokenizerPath = tokenizerPath;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
        Tokenizer tokenizer = TokenizerHolder.get(tokenizerPath);
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
