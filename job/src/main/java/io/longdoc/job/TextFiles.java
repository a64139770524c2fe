package io.longdoc.job;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@code --format text}: one document per file, its path as id. Spark's file sources skip
 * zero-length files, which would lose empty documents, so the driver lists the paths (metadata
 * only, as Spark does) and the executors read the contents.
 */
final class TextFiles {
    private TextFiles() {
    }

    static Dataset<Row> read(SparkSession spark, String path) throws IOException {
        Configuration conf = spark.sparkContext().hadoopConfiguration();
        Path root = new Path(path);
        FileSystem fs = root.getFileSystem(conf);
        List<String> files = new ArrayList<>();
        RemoteIterator<LocatedFileStatus> it = fs.listFiles(root, true);
        while (it.hasNext()) {
            Path p = it.next().getPath();
            String name = p.getName();
            if (!name.startsWith("_") && !name.startsWith(".")) {
                files.add(p.toString());
            }
        }
        Map<String, String> settings = new HashMap<>();
        conf.forEach(e -> settings.put(e.getKey(), e.getValue()));
        int partitions = Math.max(1, Math.min(files.size(), spark.sparkContext().defaultParallelism() * 2));
        return spark.createDataset(files, Encoders.STRING()).repartition(partitions)
                .mapPartitions(new ReadFiles(settings), Encoders.row(new StructType()
                        .add("id", DataTypes.StringType, false).add("text", DataTypes.StringType, false)))
                .toDF();
    }

    private static final class ReadFiles implements MapPartitionsFunction<String, Row> {
        private final Map<String, String> settings;

        ReadFiles(Map<String, String> settings) {
            this.settings = settings;
        }

        @Override
        public Iterator<Row> call(Iterator<String> paths) {
            Configuration conf = new Configuration(false);
            settings.forEach(conf::set);
            return new Iterator<>() {
                @Override
                public boolean hasNext() {
                    return paths.hasNext();
                }

                @Override
                public Row next() {
                    String file = paths.next();
                    Path p = new Path(file);
                    try (InputStream in = p.getFileSystem(conf).open(p)) {
                        return RowFactory.create(file, new String(in.readAllBytes(), StandardCharsets.UTF_8));
                    } catch (IOException e) {
                        throw new IllegalStateException("cannot read " + file + ": " + e.getMessage(), e);
                    }
                }
            };
        }
    }
}
