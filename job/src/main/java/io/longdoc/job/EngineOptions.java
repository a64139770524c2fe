package io.longdoc.job;

import com.typesafe.config.Config;
import io.longdoc.engine.cpu.CpuBackend;
import io.longdoc.engine.cuda.CudaDevice;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.ModelFormatException;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.tokenizer.TokenizerFormatException;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
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
        try {
            return new EngineSettings(e.getLong("kv-cache-mb") << 20, e.getInt("block-size"), e.getInt("max-tokens-per-step"),
                    e.getInt("max-sequences"), threads, e.getString("backend"), e.hasPath("device") ? e.getInt("device") : 0,
                    e.getDouble("gpu-memory-fraction"), e.getString("kv-cache-type"), e.getBoolean("mask-pad-in-prompt"));
        } catch (IllegalArgumentException bad) {
            throw new UsageException("longdoc.engine: " + bad.getMessage(), bad);
        }
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
                String missing = CudaDevice.probe();
                if (missing != null) {
                    throw new UsageException("--backend cuda: " + missing + " (use cpu or auto)");
                }
            }
            default -> throw new UsageException("--backend " + backend + ": expected cpu, cuda or auto");
        }
    }

    /**
     * Before any inference, when the documents will run on the CPU backend (--backend cpu, or auto
     * with a local master on a machine without a usable GPU): its KV cache must hold the longest
     * document's prompt and new tokens, or every such document would end as an error. Bad input
     * (exit 2) naming the sizes and the settings that fix it.
     *
     * @param tokensNeeded the longest prompt (truncated document and template) plus max new tokens
     */
    public static void checkCpuKvCache(EngineSettings s, boolean localMaster, ModelConfig model, int tokensNeeded) {
        boolean cpu = s.backend().equals("cpu")
                || s.backend().equals("auto") && localMaster && CudaDevice.probe() != null;
        if (!cpu) {
            return;
        }
        boolean bf16 = s.kvCacheType().equals("bf16");
        long perToken = CpuBackend.kvBytesPerToken(model, bf16);
        long holds = Math.max(1, s.kvCacheBytes() / (perToken * s.blockSize())) * s.blockSize();   // whole blocks, as the engine sizes it
        if (holds >= tokensNeeded) {
            return;
        }
        long blocksNeeded = (tokensNeeded + s.blockSize() - 1) / s.blockSize();
        long mbNeeded = (blocksNeeded * s.blockSize() * perToken + (1 << 20) - 1) >> 20;
        throw new UsageException(String.format(Locale.ROOT,
                "the CPU backend's KV cache holds %d tokens of this model (longdoc.engine.kv-cache-mb = %d, kv-cache-type = %s: %d bytes a token), "
                        + "and the longest document needs %d (its prompt and the new tokens): raise longdoc.engine.kv-cache-mb to %d or more, "
                        + "set longdoc.engine.kv-cache-type = bf16 (half the bytes a token), or lower --context-tokens; no inference ran",
                holds, s.kvCacheBytes() >> 20, s.kvCacheType(), perToken, tokensNeeded, mbNeeded));
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
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage(), e);   // settings that cannot work here (a KV cache larger than the heap)
        }
    }
}
