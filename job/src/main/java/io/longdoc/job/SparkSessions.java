package io.longdoc.job;

import com.typesafe.config.Config;
import org.apache.spark.sql.SparkSession;

/** The driver's SparkSession: spark-submit's settings when present, else the embedded local one. */
public final class SparkSessions {
    private SparkSessions() {
    }

    /** The driver's Hadoop settings (spark.hadoop.* included), for executors that open files themselves. */
    public static java.util.HashMap<String, String> hadoopSettings(SparkSession spark) {
        java.util.HashMap<String, String> m = new java.util.HashMap<>();
        spark.sparkContext().hadoopConfiguration().forEach(e -> m.put(e.getKey(), e.getValue()));
        return m;
    }

    /** Where remote models are copied: longdoc.engine.model-cache, else $LONGDOC_MODEL_CACHE or the temp dir. */
    public static String modelCache(Config config) {
        return config.hasPath("longdoc.engine.model-cache") ? config.getString("longdoc.engine.model-cache")
                : io.longdoc.udfs.ModelCache.defaultRoot().toString();
    }

    /** A local or remote path as given; local ones made absolute (executors may run elsewhere). */
    public static String absolute(String path) {
        return java.net.URI.create(path.replace(" ", "%20")).getScheme() == null ? java.nio.file.Path.of(path).toAbsolutePath().toString() : path;
    }

    public static SparkSession create(Config config, String stage) {
        Config s = config.getConfig("longdoc.spark");
        SparkSession.Builder b = SparkSession.builder().appName(s.getString("app-name") + " " + stage);
        if (System.getProperty("spark.master") == null) {
            b.master(s.getString("master"));
            b.config("spark.ui.enabled", s.getBoolean("ui-enabled"));
            b.config("spark.driver.host", "127.0.0.1");
            b.config("spark.driver.bindAddress", "127.0.0.1");
        }
        b.config("spark.sql.shuffle.partitions", s.getInt("shuffle-partitions"));
        // Each task's output file appears when that task commits: a killed run leaves the finished
        // partitions (which --resume keeps) and no partial file (unfinished ones stay in _temporary).
        b.config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2");
        SparkSession spark = b.getOrCreate();
        spark.sparkContext().setLogLevel("WARN");
        return spark;
    }
}
