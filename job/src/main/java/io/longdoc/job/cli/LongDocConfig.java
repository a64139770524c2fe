package io.longdoc.job.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import java.io.File;
import java.util.List;

/**
 * The configuration: {@code -Dkey=value} over {@code --conf FILE} over the built-in
 * {@code application.conf} (conf/application.conf, packaged in the job jar).
 */
public final class LongDocConfig {
    private LongDocConfig() {
    }

    /** {@code key = value} parsed as HOCON (numbers, lists, ...), or as a plain string when it is not HOCON. */
    static Config override(Config config, String key, String value) {
        Config parsed;
        try {
            parsed = ConfigFactory.parseString(key + " = " + value);
        } catch (ConfigException e) {
            try {
                parsed = ConfigFactory.parseMap(java.util.Map.of(key, value));
            } catch (ConfigException e2) {
                throw new UsageException("-D" + key + "=" + value + ": " + e2.getMessage(), e2);
            }
        }
        return parsed.withFallback(config);
    }

    public static Config load(Args args) {
        Config defaults = ConfigFactory.parseResources("application.conf", ConfigParseOptions.defaults().setAllowMissing(false));
        Config config = defaults;
        if (args.has("conf")) {
            File f = new File(args.get("conf"));
            if (!f.isFile()) {
                throw new UsageException("--conf " + f + ": no such file");
            }
            try {
                config = ConfigFactory.parseFile(f).withFallback(config);
            } catch (ConfigException e) {
                throw new UsageException("--conf " + f + ": " + e.getMessage(), e);
            }
        }
        List<String> overrides = args.configOverrides();
        for (String kv : overrides) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new UsageException("-D" + kv + ": expected -Dkey=value");
            }
            config = override(config, kv.substring(0, eq).trim(), kv.substring(eq + 1));
        }
        // System properties (e.g. spark-submit --driver-java-options -Dlongdoc.x=y) win over files too.
        config = ConfigFactory.systemProperties().withOnlyPath("longdoc").withFallback(config).resolve();
        return config;
    }
}
