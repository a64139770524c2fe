package io.longdoc.job;

import io.longdoc.job.cli.UsageException;
import java.io.IOException;
import java.util.Arrays;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * Reads the document table as rows of {@code (id string, text string)}. Every problem the user
 * can fix (missing path, unknown format, missing or mistyped column) is a {@link UsageException}
 * naming it.
 */
public final class InputTable {
    private InputTable() {
    }

    /** Spark's column for JSON lines it cannot parse. */
    private static final String CORRUPT_JSON = "_corrupt_record";

    public static Dataset<Row> read(SparkSession spark, String path, String format, String idCol, String textCol) {
        return read(spark, path, format, idCol, textCol, java.util.List.of());
    }

    /** Rows of (id, text, then the kept columns as they are in the input). */
    public static Dataset<Row> read(SparkSession spark, String path, String format, String idCol, String textCol, java.util.List<String> keepCols) {
        Path p = new Path(path);
        try {
            FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
            if (!fs.exists(p)) {
                throw new UsageException("--input " + path + ": no such file or directory");
            }
        } catch (IOException | IllegalArgumentException e) {
            throw new UsageException("--input " + path + ": cannot be read (" + e.getMessage() + ")", e);
        }
        Dataset<Row> df;
        try {
            df = switch (format) {
                case "parquet" -> spark.read().parquet(path);
                case "json" -> spark.read().option("columnNameOfCorruptRecord", CORRUPT_JSON).json(path);
                case "text" -> TextFiles.read(spark, path)
                        .select(functions.col("id").as(idCol), functions.col("text").as(textCol));
                default -> throw new UsageException("--format " + format + ": unknown format (use parquet, json or text)");
            };
        } catch (UsageException e) {
            throw e;
        } catch (Exception e) {
            // Opening the input only reads its schema (Parquet footers, a JSON sample): whatever
            // fails here (Spark's AnalysisException, thrown undeclared; a SparkException for a file
            // that is not Parquet; an IOException) is the input's fault, reported as such.
            throw new UsageException("--input " + path + " is not readable as " + format + ": " + e.getMessage(), e);
        }
        if (format.equals("json") && Arrays.asList(df.columns()).contains(CORRUPT_JSON)) {
            // Spark read a line it could not parse as a row of nulls: its id and text are lost, so
            // the input is refused, naming the line, rather than given a row that blames a null text.
            Dataset<Row> bad = df.where(functions.col(CORRUPT_JSON).isNotNull()).cache();
            long n = bad.count();
            if (n > 0) {
                String first = bad.select(CORRUPT_JSON).first().getString(0);
                bad.unpersist();
                throw new UsageException("--input " + path + ": " + n + " line" + (n == 1 ? " is" : "s are") + " not valid JSON, the first: "
                        + (first.length() > 200 ? first.substring(0, 200) + "…" : first));
            }
            bad.unpersist();
            df = df.drop(CORRUPT_JSON);
        }
        String[] columns = df.columns();
        for (String c : new String[] {idCol, textCol}) {
            if (!Arrays.asList(columns).contains(c)) {
                String flag = c.equals(idCol) ? "--id-col" : "--text-col";
                throw new UsageException("input " + path + " has no column '" + c + "' (columns: " + String.join(", ", columns) + "; set " + flag + ")");
            }
        }
        DataType textType = df.schema().apply(textCol).dataType();
        if (!textType.equals(DataTypes.StringType)) {
            throw new UsageException("input column '" + textCol + "' is " + textType.simpleString() + ", not a string");
        }
        java.util.List<org.apache.spark.sql.Column> cols = new java.util.ArrayList<>();
        cols.add(column(df, idCol).cast(DataTypes.StringType).as("id"));
        cols.add(column(df, textCol).as("text"));
        for (String k : keepCols) {
            if (!Arrays.asList(columns).contains(k)) {
                throw new UsageException("--keep-cols: input " + path + " has no column '" + k + "' (columns: " + String.join(", ", columns) + ")");
            }
            cols.add(column(df, k));
        }
        return df.select(cols.toArray(new org.apache.spark.sql.Column[0]));
    }

    /** The column of that exact name: quoted, so a name with a dot ("doc.id") is not read as a nested field. */
    private static org.apache.spark.sql.Column column(Dataset<Row> df, String name) {
        return df.col("`" + name.replace("`", "``") + "`");
    }
}
