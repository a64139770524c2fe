package io.longdoc.engine.runtime;

/**
 * Engine knobs (each has a twin under {@code longdoc.engine} in conf/application.conf).
 *
 * @param kvCacheBytes memory for the KV cache on the CPU backend; admission never exceeds it
 * @param blockSize tokens per KV block
 * @param maxTokensPerStep prefill + decode tokens computed in one step (bounds activation memory)
 * @param maxSequences sequences in flight at once
 * @param threads CPU threads for the CPU backend
 * @param backend cpu, cuda, or auto (cuda when a GPU, its driver and the kernels are present, else cpu)
 * @param device CUDA device ordinal (the GPU Spark assigned to the task, else configuration, else 0)
 * @param gpuMemoryFraction share of the GPU's memory the engine may use, the KV cache taking what
 *     weights and activations leave (like vLLM's gpu_memory_utilization)
 * @param kvCacheType what the CPU backend stores keys and values as: f32 (exact; the default) or
 *     bf16 (half the memory and bandwidth, as the CUDA backend always stores them)
 * @param maskPadInPrompt generation ignores the prompt's pad ids (the model's pad_token_id, when it
 *     is not an EOS id), as Hugging Face {@code generate} does when called without an attention
 *     mask, as the Index demo calls it: no position, no key. Index-1.9B's pad id is 0, the system
 *     marker its prompts begin with. Off: every prompt id is attended (OpenCompass passes a mask).
 */
public record EngineSettings(long kvCacheBytes, int blockSize, int maxTokensPerStep, int maxSequences, int threads,
                             String backend, int device, double gpuMemoryFraction, String kvCacheType,
                             boolean maskPadInPrompt) implements java.io.Serializable {
    public EngineSettings {
        if (!kvCacheType.equals("f32") && !kvCacheType.equals("bf16")) {
            throw new IllegalArgumentException("KV cache type '" + kvCacheType + "': expected f32 or bf16");
        }
        if (!backend.equals("cpu") && !backend.equals("cuda") && !backend.equals("auto")) {
            throw new IllegalArgumentException("backend '" + backend + "': expected cpu, cuda or auto");
        }
        if (!(gpuMemoryFraction > 0 && gpuMemoryFraction <= 1)) {
            throw new IllegalArgumentException("gpu memory fraction " + gpuMemoryFraction + " must be in (0, 1]");
        }
    }

    public EngineSettings(long kvCacheBytes, int blockSize, int maxTokensPerStep, int maxSequences, int threads) {
        this(kvCacheBytes, blockSize, maxTokensPerStep, maxSequences, threads, "cpu", 0, 0.9, "f32", true);
    }

    public static EngineSettings defaults() {
        return new EngineSettings(512L << 20, 16, 512, 64, Runtime.getRuntime().availableProcessors());
    }

    public EngineSettings withKvCacheBytes(long bytes) {
        return new EngineSettings(bytes, blockSize, maxTokensPerStep, maxSequences, threads, backend, device, gpuMemoryFraction, kvCacheType, maskPadInPrompt);
    }

    public EngineSettings withMaxSequences(int n) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, n, threads, backend, device, gpuMemoryFraction, kvCacheType, maskPadInPrompt);
    }

    public EngineSettings withThreads(int n) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, maxSequences, n, backend, device, gpuMemoryFraction, kvCacheType, maskPadInPrompt);
    }

    public EngineSettings withMaxTokensPerStep(int n) {
        return new EngineSettings(kvCacheBytes, blockSize, n, maxSequences, threads, backend, device, gpuMemoryFraction, kvCacheType, maskPadInPrompt);
    }

    public EngineSettings withBackend(String b) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, maxSequences, threads, b, device, gpuMemoryFraction, kvCacheType, maskPadInPrompt);
    }

    public EngineSettings withDevice(int d) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, maxSequences, threads, backend, d, gpuMemoryFraction, kvCacheType, maskPadInPrompt);
    }

    public EngineSettings withKvCacheType(String type) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, maxSequences, threads, backend, device, gpuMemoryFraction, type, maskPadInPrompt);
    }

    public EngineSettings withMaskPadInPrompt(boolean mask) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, maxSequences, threads, backend, device, gpuMemoryFraction, kvCacheType, mask);
    }
}
