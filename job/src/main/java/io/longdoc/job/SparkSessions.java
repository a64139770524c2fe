package io.longdoc.job;

import com.typesafe.config.Config;
import org.apache.spark.sql.SparkSession;

/** The driver's SparkSession: spark-submit's settings when present, else the embedded local one. */
public final class SparkSessions {
    private SparkSessions() {
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
