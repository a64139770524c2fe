package io.longdoc.engine.runtime;

/**
 * Engine knobs (each has a twin under {@code longdoc.engine} in conf/application.conf).
 *
 * @param kvCacheBytes memory for the KV cache; admission never exceeds it
 * @param blockSize tokens per KV block
 * @param maxTokensPerStep prefill + decode tokens computed in one step (bounds activation memory)
 * @param maxSequences sequences in flight at once
 * @param threads CPU threads for the CPU backend
 */
public record EngineSettings(long kvCacheBytes, int blockSize, int maxTokensPerStep, int maxSequences, int threads)
        implements java.io.Serializable {
    public static EngineSettings defaults() {
        return new EngineSettings(512L << 20, 16, 512, 64, Runtime.getRuntime().availableProcessors());
    }

    public EngineSettings withKvCacheBytes(long bytes) {
        return new EngineSettings(bytes, blockSize, maxTokensPerStep, maxSequences, threads);
    }

    public EngineSettings withMaxSequences(int n) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, n, threads);
    }

    public EngineSettings withThreads(int n) {
        return new EngineSettings(kvCacheBytes, blockSize, maxTokensPerStep, maxSequences, n);
    }

    public EngineSettings withMaxTokensPerStep(int n) {
        return new EngineSettings(kvCacheBytes, blockSize, n, maxSequences, threads);
    }
}
