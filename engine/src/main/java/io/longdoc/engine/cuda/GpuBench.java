package io.longdoc.engine.cuda;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.longdoc.engine.model.DType;
import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.SafeTensorsWriter;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.runtime.Chunk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The GPU benchmark of deploy/gpu/check.sh, on the Index-1.9B-32K shape with random BF16 weights:
 * prefill tokens/s and MFU at 4K, 16K and 32K prompt tokens; decode tokens/s and effective HBM
 * bandwidth with 1, 4 and 12 sequences at 32K context and 32 sequences at 8K; and documents/hour
 * for 32K-token documents with 256 new tokens, derived from those measured steps. Steps go
 * straight to the backend (decode steps read a KV cache of the stated length; its contents do
 * not change the work). Writes one JSON object.
 *
 * <pre>java -cp ... io.longdoc.engine.cuda.GpuBench --out bench.json [--layers 36] [--peak-tflops 989] [--hbm-tbps 4.8]</pre>
 */
public final class GpuBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private GpuBench() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            opts.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        String missing = CudaDevice.probe();
        if (missing != null) {
            System.err.println("gpu bench: no GPU: " + missing);
            System.exit(2);
        }
        int layers = Integer.parseInt(opts.getOrDefault("layers", "36"));
        double peakTflops = Double.parseDouble(opts.getOrDefault("peak-tflops", "989"));
        double hbmTbps = Double.parseDouble(opts.getOrDefault("hbm-tbps", "4.8"));
        Path out = Path.of(opts.getOrDefault("out", "gpu-bench.json"));
        Path dir = Files.createTempDirectory(Files.isDirectory(Path.of("/dev/shm")) ? Path.of("/dev/shm") : Path.of(System.getProperty("java.io.tmpdir")), "longdoc-bench");
        long t0 = System.nanoTime();
        writeIndexShape(dir, layers);
        ObjectNode result = JSON.createObjectNode();
        result.put("model", "Index-1.9B-32K shape, random BF16 weights, " + layers + " layers");
        result.put("write_model_seconds", (System.nanoTime() - t0) / 1e9);

        ModelConfig config = ModelConfig.load(dir);
        LlamaWeights weights = new LlamaWeights(config, Weights.open(dir));
        int blockSize = 16, maxStep = 4096;
        int maxBlocks = 12 * (32768 / blockSize) + 64;
        t0 = System.nanoTime();
        try (CudaBackend gpu = new CudaBackend(weights, 0, blockSize, maxStep, 32, 0.95, maxBlocks)) {
            result.put("load_seconds", (System.nanoTime() - t0) / 1e9);
            result.put("device", gpu.name());
            long params = parameters(config), weightBytes = 2 * params;
            result.put("parameters", params);

            // Prefill: one document, chunks of 4096 tokens, logits for the last token only.
            ArrayNode prefill = result.putArray("prefill");
            double prefillSeconds32k = 0;
            for (int tokens : new int[] {4096, 16384, 32768}) {
                runPrefill(gpu, config, 2048);   // warm-up
                double seconds = runPrefill(gpu, config, tokens);
                double flops = 2.0 * (params - (long) config.vocabSize() * config.dim()) * tokens
                        + 2.0 * (double) tokens * tokens * config.qDim() * config.layers()   // causal QKᵀ and PV
                        + 2.0 * config.vocabSize() * config.dim();
                ObjectNode p = prefill.addObject();
                p.put("tokens", tokens);
                p.put("seconds", seconds);
                p.put("tokens_per_second", tokens / seconds);
                p.put("mfu", flops / seconds / (peakTflops * 1e12));
                if (tokens == 32768) {
                    prefillSeconds32k = seconds;
                }
                save(out, result);   // partial results survive a time limit
            }

            // Decode: B sequences at context C, one token each per step.
            ArrayNode decode = result.putArray("decode");
            double step12 = 0;
            for (int[] shape : new int[][] {{1, 32768}, {4, 32768}, {12, 32768}, {32, 8192}}) {
                int batch = shape[0], context = shape[1];
                if ((long) batch * context / blockSize > gpu.kvBlocks()) {
                    ObjectNode d = decode.addObject();
                    d.put("sequences", batch);
                    d.put("context", context);
                    d.put("skipped", "KV cache of " + gpu.kvBlocks() + " blocks is too small");
                    continue;
                }
                List<Chunk> step = decodeStep(config, batch, context, blockSize);
                for (int i = 0; i < 3; i++) {
                    gpu.forward(step);
                }
                int steps = 20;
                long start = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    gpu.forward(step);
                }
                double seconds = (System.nanoTime() - start) / 1e9 / steps;
                double bytes = weightBytes + (double) batch * context * CudaBackend.kvBytesPerToken(config);
                ObjectNode d = decode.addObject();
                d.put("sequences", batch);
                d.put("context", context);
                d.put("step_ms", seconds * 1e3);
                d.put("tokens_per_second", batch / seconds);
                d.put("effective_hbm_tbps", bytes / seconds / 1e12);
                d.put("hbm_share", bytes / seconds / (hbmTbps * 1e12));
                if (batch == 12) {
                    step12 = seconds;
                }
                save(out, result);
            }
            if (prefillSeconds32k > 0 && step12 > 0) {
                // 12 documents in flight: each is prefilled once, then 256 decode steps serve all 12.
                double batchSeconds = 12 * prefillSeconds32k + 256 * step12;
                result.put("documents_per_hour_32k_256", 12 * 3600 / batchSeconds);
            }
        } finally {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.deleteIfExists(f);
                }
            }
            Files.deleteIfExists(dir);
        }
        Files.writeString(out, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result) + "\n");
        System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
    }

    private static void save(Path out, ObjectNode result) throws IOException {
        Files.writeString(out, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result) + "\n");
    }

    private static double runPrefill(CudaBackend gpu, ModelConfig c, int tokens) {
        int blockSize = gpu.kvBlockSize();
        int[] table = new int[(tokens + blockSize - 1) / blockSize];
        for (int i = 0; i < table.length; i++) {
            table[i] = i;
        }
        long start = System.nanoTime();
        for (int at = 0; at < tokens; at += 4096) {
            int n = Math.min(4096, tokens - at);
            int[] ids = new int[n];
            for (int i = 0; i < n; i++) {
                ids[i] = 3 + (at + i) * 7919 % (c.vocabSize() - 3);
            }
            int[] logitsAt = at + n == tokens ? new int[] {n - 1} : new int[0];
            gpu.forward(List.of(new Chunk(table, at, ids, logitsAt, tokens)));
        }
        return (System.nanoTime() - start) / 1e9;
    }

    private static List<Chunk> decodeStep(ModelConfig c, int batch, int context, int blockSize) {
        List<Chunk> step = new ArrayList<>();
        int perSeq = (context + blockSize - 1) / blockSize;
        for (int s = 0; s < batch; s++) {
            int[] table = new int[perSeq];
            for (int i = 0; i < perSeq; i++) {
                table[i] = s * perSeq + i;
            }
            step.add(new Chunk(table, context - 1, new int[] {3 + s}, new int[] {0}, context));
        }
        return step;
    }

    static long parameters(ModelConfig c) {
        long perLayer = (long) c.dim() * (c.qDim() + 2L * c.kvDim()) + (long) c.qDim() * c.dim() + 3L * c.dim() * c.hiddenDim() + 2L * c.dim();
        return 2L * c.vocabSize() * c.dim() + c.layers() * perLayer + c.dim();
    }

    /** config.json and a BF16 model.safetensors of the Index-1.9B-32K shape, random values (one random block repeated). */
    static void writeIndexShape(Path dir, int layers) throws IOException {
        int dim = 2048, hidden = 5888, vocab = 65029;
        Map<String, long[]> shapes = SafeTensorsWriter.llamaShapes(dim, hidden, layers, 16, 16, vocab, false);
        ByteBuffer block = ByteBuffer.allocateDirect(64 << 20).order(ByteOrder.LITTLE_ENDIAN);
        SplittableRandom random = new SplittableRandom(1);
        while (block.remaining() >= 2) {
            block.putShort(Bf16.fromFloat((float) ((random.nextDouble() * 2 - 1) * 0.03)));
        }
        try (FileChannel ch = SafeTensorsWriter.create(dir.resolve("model.safetensors"), shapes,
                DType.BF16)) {
            long left = SafeTensorsWriter.dataBytes(shapes, DType.BF16);
            while (left > 0) {
                block.clear();
                block.limit((int) Math.min(block.capacity(), left));
                left -= ch.write(block);
            }
        }
        ObjectNode config = JSON.createObjectNode();
        config.putArray("architectures").add("IndexForCausalLM");
        config.put("model_type", "index").put("hidden_size", dim).put("intermediate_size", hidden).put("num_hidden_layers", layers)
                .put("num_attention_heads", 16).put("num_key_value_heads", 16).put("vocab_size", vocab)
                .put("max_position_embeddings", 32768).put("rms_norm_eps", 1e-6).put("hidden_act", "silu")
                .put("tie_word_embeddings", false).put("norm_head", 1).put("rope_ratio", 32).put("rope_theta", 10000.0)
                .put("bos_token_id", 1).put("eos_token_id", 2).put("torch_dtype", "bfloat16");
        Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
    }
}
