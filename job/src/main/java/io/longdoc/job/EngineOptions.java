package io.longdoc.job;

import com.typesafe.config.Config;
import io.longdoc.engine.model.ModelFormatException;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.tokenizer.TokenizerFormatException;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Engine settings from {@code longdoc.engine} and --backend, and loading with clear errors. */
public final class EngineOptions {
    private static final Logger LOG = LoggerFactory.getLogger(EngineOptions.class);

    private EngineOptions() {
    }

    public static EngineSettings settings(Config config) {
        Config e = config.getConfig("longdoc.engine");
        int threads = e.getInt("threads") > 0 ? e.getInt("threads") : Runtime.getRuntime().availableProcessors();
        return new EngineSettings(e.getLong("kv-cache-mb") << 20, e.getInt("block-size"), e.getInt("max-tokens-per-step"),
                e.getInt("max-sequences"), threads);
    }

    /** Checks --backend (or longdoc.engine.backend): cuda is not built yet, so it is refused and auto means cpu. */
    public static void checkBackend(Args args, Config config) {
        String backend = args.get("backend", config.getString("longdoc.engine.backend"));
        switch (backend) {
            case "cpu" -> { }
            case "auto" -> LOG.info("backend auto: no CUDA backend in this build, using the CPU");
            case "cuda" -> throw new UsageException("--backend cuda: no CUDA backend in this build (use cpu or auto)");
            default -> throw new UsageException("--backend " + backend + ": expected cpu, cuda or auto");
        }
    }

    /** Loads the model of --model on the backend of --backend. */
    public static Engine load(Args args, Config config) {
        String model = args.require("model");
        if (!Files.isDirectory(Path.of(model))) {
            throw new UsageException("--model " + model + ": not a directory");
        }
        checkBackend(args, config);
        try {
            return Engine.load(Path.of(model), settings(config));
        } catch (ModelFormatException | TokenizerFormatException e) {
            throw new UsageException(e.getMessage(), e);
        }
    }
}
