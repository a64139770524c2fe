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
                e.getInt("max-sequences"), threads, e.getString("backend"), e.hasPath("device") ? e.getInt("device") : 0,
                e.getDouble("gpu-memory-fraction"), e.getString("kv-cache-type"));
    }

    /** The settings with --backend applied (it overrides longdoc.engine.backend). */
    public static EngineSettings settings(Args args, Config config) {
        return settings(config).withBackend(args.get("backend", config.getString("longdoc.engine.backend")));
    }

    /**
     * Checks --backend (or longdoc.engine.backend) before any work: cuda without a usable GPU is
     * bad input (exit 2) naming why; auto falls back to the CPU when the engine loads.
     */
    public static void checkBackend(Args args, Config config) {
        String backend = args.get("backend", config.getString("longdoc.engine.backend"));
        switch (backend) {
            case "cpu", "auto" -> { }
            case "cuda" -> {
                String missing = io.longdoc.engine.cuda.CudaDevice.probe();
                if (missing != null) {
                    throw new UsageException("--backend cuda: " + missing + " (use cpu or auto)");
                }
            }
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
            return Engine.load(Path.of(model), settings(args, config));
        } catch (ModelFormatException | TokenizerFormatException e) {
            throw new UsageException(e.getMessage(), e);
        }
    }
}
