package io.longdoc.engine.runtime;

import io.longdoc.engine.cpu.CpuBackend;
import io.longdoc.engine.cpu.VectorMath;
import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * A loaded model ready to generate: tokenizer, backend and the continuous-batching scheduler.
 * Thread-safe: any number of threads may submit at once.
 */
public final class Engine implements AutoCloseable {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Engine.class);
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final Backend backend;
    private final Scheduler scheduler;
    private final boolean maskPadInPrompt;
    private io.longdoc.engine.constrain.TokenTrie tokenTrie;

    private Engine(ModelConfig config, Tokenizer tokenizer, Backend backend, EngineSettings settings) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.backend = backend;
        this.scheduler = new Scheduler(backend, settings.maxTokensPerStep(), settings.maxSequences());
        this.maskPadInPrompt = settings.maskPadInPrompt();
    }

    /**
     * Loads a Hugging Face model directory on the backend the settings name: cpu; cuda (an error
     * saying why when no GPU can be used); auto (cuda when it can be used, else cpu, with one log line).
     */
    public static Engine load(Path modelDir, EngineSettings settings) {
        ModelConfig config = ModelConfig.load(modelDir);
        LlamaWeights weights = new LlamaWeights(config, Weights.open(modelDir));
        Tokenizer tokenizer = Files.isRegularFile(modelDir.resolve("tokenizer.model")) ? Tokenizer.load(modelDir) : null;
        int maxBlocks = (config.contextLength() + settings.blockSize() - 1) / settings.blockSize() * Math.max(1, settings.maxSequences());
        boolean cuda = switch (settings.backend()) {
            case "cuda" -> {
                String missing = io.longdoc.engine.cuda.CudaDevice.probe();
                if (missing != null) {
                    throw new IllegalStateException("backend cuda: " + missing);
                }
                yield true;
            }
            case "auto" -> {
                String missing = io.longdoc.engine.cuda.CudaDevice.probe();
                if (missing != null) {
                    LOG.info("backend auto: using the CPU ({})", missing);
                }
                yield missing == null;
            }
            default -> false;
        };
        Backend backend;
        if (cuda) {
            backend = new io.longdoc.engine.cuda.CudaBackend(weights, settings.device(), settings.blockSize(), settings.maxTokensPerStep(),
                    settings.maxSequences(), settings.gpuMemoryFraction(), maxBlocks);
        } else {
            boolean bf16 = settings.kvCacheType().equals("bf16");
            long perBlock = CpuBackend.kvBytesPerToken(config, bf16) * settings.blockSize();
            int blocks = (int) Math.max(1, Math.min(maxBlocks, settings.kvCacheBytes() / perBlock));
            // The cache is allocated whole, on the heap: say so before the JVM runs out of memory.
            long heap = Runtime.getRuntime().maxMemory();
            if ((long) blocks * perBlock > heap - heap / 8) {
                throw new IllegalArgumentException(String.format(java.util.Locale.ROOT,
                        "the CPU backend's KV cache (%d MB: longdoc.engine.kv-cache-mb, or what the context of %d sequences needs) "
                                + "does not fit this JVM's heap (at most %d MB): lower longdoc.engine.kv-cache-mb or longdoc.engine.max-sequences, "
                                + "or give the JVM more (LONGDOC_JAVA_OPTS=-Xmx…, or spark.executor.memory / spark.driver.memory)",
                        (long) blocks * perBlock >> 20, Math.max(1, settings.maxSequences()), heap >> 20));
            }
            backend = new CpuBackend(weights, blocks, settings.blockSize(), settings.threads(), VectorMath.get(), bf16);
        }
        return new Engine(config, tokenizer, backend, settings);
    }

    public ModelConfig config() {
        return config;
    }

    /** The model's tokenizer, or null when the directory has no tokenizer.model. */
    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The vocabulary trie for constrained decoding, built on first use and shared by all requests. */
    public synchronized io.longdoc.engine.constrain.TokenTrie tokenTrie() {
        if (tokenTrie == null) {
            if (tokenizer == null) {
                throw new IllegalStateException("constrained decoding needs the model's tokenizer.model");
            }
            tokenTrie = new io.longdoc.engine.constrain.TokenTrie(tokenizer);
        }
        return tokenTrie;
    }

    public Backend backend() {
        return backend;
    }

    public Scheduler scheduler() {
        return scheduler;
    }

    /** Queues a request; the future completes when it finishes. */
    public CompletableFuture<GenerationResult> submit(int[] promptIds, SamplingParams params) {
        return submit(promptIds, params, null);
    }

    /** Queues a request whose output is restricted by {@code constraint} (one instance per request; null: none). */
    public CompletableFuture<GenerationResult> submit(int[] promptIds, SamplingParams params, TokenConstraint constraint) {
        int[] submitted = promptIds.clone();
        return scheduler.submit(new Scheduler.Request(attended(submitted), submitted, params, null, constraint));
    }

    /**
     * The prompt ids generation attends to: with {@link EngineSettings#maskPadInPrompt}, those that
     * are not the model's pad id (unless it is an EOS id). Hugging Face generate, given no attention
     * mask, masks every prompt position holding the pad id and numbers the others from 0 without
     * them (position = cumulative mask − 1), which is the model run over the prompt without them.
     * A prompt of nothing but pad ids is kept whole.
     */
    public int[] attended(int[] prompt) {
        int pad = config.padId();
        if (!maskPadInPrompt || pad < 0 || Arrays.stream(config.eosIds()).anyMatch(e -> e == pad)) {
            return prompt;
        }
        int[] kept = Arrays.stream(prompt).filter(id -> id != pad).toArray();
        return kept.length == prompt.length || kept.length == 0 ? prompt : kept;
    }

    /** Blocking: generates for every prompt (all in flight together) and returns results in order. */
    public List<GenerationResult> generate(List<int[]> prompts, SamplingParams params) throws ExecutionException, InterruptedException {
        List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
        for (int[] p : prompts) {
            futures.add(submit(p, params));
        }
        List<GenerationResult> out = new ArrayList<>();
        for (CompletableFuture<GenerationResult> f : futures) {
            out.add(f.get());
        }
        return out;
    }

    /** Teacher-forced logits over {@code ids} at each of {@code positions} (logits predicting the token after it). */
    public float[][] score(int[] ids, int[] positions) throws ExecutionException, InterruptedException {
        for (int p : positions) {
            if (p < 0 || p >= ids.length) {
                throw new IllegalArgumentException("position " + p + " is outside the " + ids.length + " ids");
            }
        }
        Scheduler.Request r = new Scheduler.Request(ids.clone(), SamplingParams.greedy(0), positions.clone());
        scheduler.submit(r);
        r.result.get();
        return r.scores.get();
    }

    @Override
    public void close() {
        scheduler.close();
        backend.close();
    }
}
