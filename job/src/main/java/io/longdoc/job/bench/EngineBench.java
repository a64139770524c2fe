package io.longdoc.job.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import io.longdoc.engine.model.DType;
import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.runtime.GenerationResult;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.SentencePieceTokenizer;
import io.longdoc.job.EngineOptions;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code longdoc bench}: CPU engine throughput — single-sequence decode, N concurrent sequences,
 * prefill, peak memory — and, with {@code --llama2c run.c}, llama2.c's run.c on the same weights
 * in the same run (compiled here with {@code -Ofast -fopenmp -march=native}).
 */
public final class EngineBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private EngineBench() {
    }

    public static Args args() {
        return new Args("bench", "(--model DIR | --shape 110m) [--tokens 256] [--concurrency 16] [--llama2c run.c] [--out FILE.json]")
                .option("model", "DIR", "model directory to benchmark")
                .option("shape", "NAME", "generate a random-weight model instead: 110m (llama2.c's stories110M shape)")
                .option("dtype", "TYPE", "weights of the --shape model: f32 (default) or bf16; run.c always gets F32")
                .option("context", "N", "context length of the --shape model (default 1024, stories110M's); longer for long --prefill")
                .option("tokenizer", "FILE", "tokenizer.model for run.c when the model has none (default ../shared llama2)")
                .option("tokens", "N", "tokens to generate per sequence (default 256)")
                .option("warmup-seconds", "S", "run every measured path for this long before timing, so the JIT has compiled it (default 10)")
                .option("concurrency", "N", "concurrent sequences for the batched run (default 16)")
                .option("prefill", "N", "prompt length for the prefill measurement (default 512, capped by the context)")
                .option("rounds", "N", "repetitions; the best is reported (default 3)")
                .option("llama2c", "FILE", "llama2.c's run.c, to build and run as the peer")
                .option("work", "DIR", "scratch directory (default: a temporary one)")
                .option("out", "FILE", "also write the results as JSON");
    }

    public static int run(Args args, Config config) throws Exception {
        Path work = args.has("work") ? Files.createDirectories(Path.of(args.get("work"))) : Files.createTempDirectory("longdoc-bench");
        Path model;
        String weightsNote = "";
        if (args.has("shape")) {
            if (!args.get("shape").equals("110m")) {
                throw new UsageException("--shape: only 110m is built in");
            }
            String dtypeName = args.has("dtype") ? args.get("dtype").toLowerCase(Locale.ROOT) : "f32";
            DType dtype = switch (dtypeName) {
                case "f32" -> DType.F32;
                case "bf16" -> DType.BF16;
                default -> throw new UsageException("--dtype: f32 or bf16, not " + args.get("dtype"));
            };
            int context = args.getInt("context") != null ? args.getInt("context") : RandomModel.CONTEXT_110M;
            if (context < 2) {
                throw new UsageException("--context must be at least 2");
            }
            model = work.resolve((dtype == DType.F32 ? "random-110m" : "random-110m-bf16") + (context == RandomModel.CONTEXT_110M ? "" : "-ctx" + context));
            if (!Files.exists(model.resolve("model.safetensors"))) {
                System.err.println("writing a random 110M-parameter " + dtype + " model (context " + context + ") to " + model);
                RandomModel.write110m(model, dtype, context);
            }
            weightsNote = dtype == DType.BF16 ? " (F32 copy of the BF16 weights)" : "";
        } else {
            model = Path.of(args.require("model"));
        }
        int tokens = args.getInt("tokens") != null ? args.getInt("tokens") : 256;
        int concurrency = args.getInt("concurrency") != null ? args.getInt("concurrency") : 16;
        int rounds = args.getInt("rounds") != null ? args.getInt("rounds") : 3;
        // On two cores C2 was still compiling (and recompiling) the kernels 5 s into a run; 3 s of
        // warm-up timed stories260k's 16 sequences at 14–18K tok/s against 37K after 10 s.
        double warmupSeconds = 10;
        if (args.has("warmup-seconds")) {
            try {
                warmupSeconds = Double.parseDouble(args.get("warmup-seconds"));
            } catch (NumberFormatException e) {
                throw new UsageException("--warmup-seconds: not a number: " + args.get("warmup-seconds"));
            }
        }
        if (rounds < 1 || warmupSeconds < 0) {
            throw new UsageException("--rounds must be at least 1 and --warmup-seconds at least 0");
        }
        ModelConfig mc = ModelConfig.load(model);
        tokens = Math.min(tokens, mc.contextLength() - 1);
        int prefill = Math.min(args.getInt("prefill") != null ? args.getInt("prefill") : 512, mc.contextLength() - 1);
        EngineSettings settings = EngineOptions.settings(config).withMaxSequences(Math.max(concurrency, 1));

        ObjectNode result = JSON.createObjectNode();
        result.put("model", model.toString());
        result.put("threads", settings.threads());
        result.put("warmup_seconds", warmupSeconds);
        double single = 0, batched = 0, prefillRate = 0, peerRate = 0, depthRate = 0, firstTokenSeconds = 0;
        int depthPrompt = 0;
        Llama2c peer = args.has("llama2c") ? Llama2c.prepare(Path.of(args.get("llama2c")), model, args.get("tokenizer"), tokens, work) : null;
        if (peer != null) {
            peer.run(); // reads its checkpoint into the page cache
        }
        try (Engine engine = Engine.load(model, settings)) {
            result.put("backend", engine.backend().name());
            SamplingParams greedy = SamplingParams.greedy(tokens).withIgnoreEos(true);
            warmUp(engine, mc, concurrency, warmupSeconds);
            // Single-sequence rounds alternate with run.c's, so a slow spell of this shared machine
            // falls on both rather than on one.
            for (int r = 0; r < rounds; r++) {
                long t0 = System.nanoTime();
                GenerationResult g = engine.submit(new int[] {1}, greedy).get();
                single = Math.max(single, g.outputIds().length / ((System.nanoTime() - t0) / 1e9));
                if (peer != null) {
                    peerRate = Math.max(peerRate, peer.run());
                }
            }
            for (int r = 0; r < rounds; r++) {
                long t0 = System.nanoTime();
                List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
                for (int s = 0; s < concurrency; s++) {
                    futures.add(engine.submit(new int[] {1, 2 + s}, greedy));
                }
                long generated = 0;
                for (CompletableFuture<GenerationResult> f : futures) {
                    generated += f.get().outputIds().length;
                }
                batched = Math.max(batched, generated / ((System.nanoTime() - t0) / 1e9));
            }
            int[] prompt = new int[prefill];
            for (int i = 0; i < prefill; i++) {
                prompt[i] = 3 + (i * 7919) % (mc.vocabSize() - 3);
            }
            for (int r = 0; r < rounds; r++) {
                long t0 = System.nanoTime();
                engine.score(prompt, new int[] {prefill - 1});
                prefillRate = Math.max(prefillRate, prefill / ((System.nanoTime() - t0) / 1e9));
            }
            // One sequence decoding after the long prompt (shortened to leave room for the new
            // tokens): what a long document's summary runs at, every step reading the prompt's cache.
            // Best of the rounds, as above: the first round also compiles the code paths that only
            // long contexts take (decode attention in parts), which halved stories260k's figure.
            depthPrompt = Math.min(prefill, mc.contextLength() - tokens);
            for (int r = 0; r < rounds && depthPrompt > 0 && tokens > 1; r++) {
                GenerationResult g = engine.submit(Arrays.copyOf(prompt, depthPrompt), greedy).get();
                depthRate = Math.max(depthRate, g.decodeTokensPerSecond());
                double seconds = g.firstTokenNanos() / 1e9;
                firstTokenSeconds = r == 0 ? seconds : Math.min(firstTokenSeconds, seconds);
            }
        }
        result.put("decode_tokens_per_s", single);
        result.put("batched_sequences", concurrency);
        result.put("batched_tokens_per_s", batched);
        result.put("batched_speedup", batched / single);
        result.put("prefill_tokens", prefill);
        result.put("prefill_tokens_per_s", prefillRate);
        result.put("decode_after_prompt_tokens", depthPrompt);
        result.put("decode_after_prompt_tokens_per_s", depthRate);
        result.put("first_token_seconds", firstTokenSeconds);
        result.put("peak_rss_mb", peakRssMb());
        result.put("peak_heap_mb", (Runtime.getRuntime().totalMemory()) >> 20);
        System.out.printf(Locale.ROOT, "longdoc %s: decode %.1f tok/s, %d sequences %.1f tok/s (%.1fx), prefill %.1f tok/s, peak RSS %d MB%n",
                result.get("backend").asText(), single, concurrency, batched, batched / single, prefillRate, peakRssMb());
        if (depthRate > 0) {
            System.out.printf(Locale.ROOT, "after a %d-token prompt: first token in %.2f s, then decode %.1f tok/s%n", depthPrompt, firstTokenSeconds, depthRate);
        }

        if (peer != null) {
            result.put("llama2c_tokens_per_s", peerRate);
            result.put("decode_ratio_vs_llama2c", single / peerRate);
            System.out.printf(Locale.ROOT, "llama2.c run.c%s: %.1f tok/s; longdoc / run.c = %.2f%n", weightsNote, peerRate, single / peerRate);
        }
        if (args.has("out")) {
            Files.writeString(Path.of(args.get("out")), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result) + "\n");
        }
        return 0;
    }

    /**
     * Runs every measured path (one sequence, a batch, a long prompt) until the JIT has compiled
     * them: at least once each, and for at least {@code seconds}. A long job runs compiled code; a
     * measurement of the first few hundred tokens would time the interpreter.
     */
    private static void warmUp(Engine engine, ModelConfig mc, int concurrency, double seconds) throws Exception {
        SamplingParams shortRun = SamplingParams.greedy(Math.min(32, mc.contextLength() - 3)).withIgnoreEos(true);
        int[] prompt = new int[Math.min(64, mc.contextLength() - 1)];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + (i * 31) % (mc.vocabSize() - 3);
        }
        long until = System.nanoTime() + (long) (seconds * 1e9);
        do {
            engine.submit(new int[] {1}, shortRun).get();
            List<CompletableFuture<GenerationResult>> batch = new ArrayList<>();
            for (int s = 0; s < Math.max(1, concurrency); s++) {
                batch.add(engine.submit(new int[] {1, 2 + s}, shortRun));
            }
            for (CompletableFuture<GenerationResult> f : batch) {
                f.get();
            }
            engine.score(prompt, new int[] {prompt.length - 1});
        } while (System.nanoTime() < until);
    }

    /** llama2.c's run.c, built here and given the same weights, timed one generation at a time. */
    private record Llama2c(Path binary, Path checkpoint, Path tokenizer, int tokens) {
        private static final Pattern RATE = Pattern.compile("achieved tok/s: ([0-9.]+)");

        static Llama2c prepare(Path runC, Path model, String tokenizerArg, int tokens, Path work) throws Exception {
            if (!Files.isRegularFile(runC)) {
                throw new UsageException("--llama2c " + runC + ": no such file");
            }
            Path binary = work.resolve("run");
            exec(List.of("gcc", "-Ofast", "-fopenmp", "-march=native", runC.toString(), "-lm", "-o", binary.toString()), null);
            ModelConfig c = ModelConfig.load(model);
            Path checkpoint = work.resolve(model.getFileName() + ".bin");
            Llama2cExport.writeModel(new LlamaWeights(c, Weights.open(model)), checkpoint);
            Path tokenizerModel = tokenizerArg != null ? Path.of(tokenizerArg)
                    : Files.isRegularFile(model.resolve("tokenizer.model")) ? model.resolve("tokenizer.model")
                    : Path.of(System.getProperty("longdoc.home", "."), "../shared/tokenizers/llama2/tokenizer.model");
            Path tokBin = work.resolve(model.getFileName() + "-tokenizer.bin");
            Llama2cExport.writeTokenizer(SentencePieceTokenizer.load(tokenizerModel), c.vocabSize(), tokBin);
            return new Llama2c(binary, checkpoint, tokBin, tokens);
        }

        /** One greedy generation of {@code tokens} tokens on every core (OpenMP); its tokens/s. */
        double run() throws Exception {
            String out = exec(List.of(binary.toString(), checkpoint.toString(), "-z", tokenizer.toString(), "-t", "0", "-n",
                    String.valueOf(tokens + 1), "-s", "1"), String.valueOf(Runtime.getRuntime().availableProcessors()));
            Matcher m = RATE.matcher(out);
            if (!m.find()) {
                throw new IllegalStateException("run.c printed no tok/s: " + out);
            }
            return Double.parseDouble(m.group(1));
        }
    }

    private static String exec(List<String> cmd, String ompThreads) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        if (ompThreads != null) {
            pb.environment().put("OMP_NUM_THREADS", ompThreads);
        }
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(20, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
        }
        return out;
    }

    static long peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (Exception ignored) {
            // not Linux
        }
        return -1;
    }

}
