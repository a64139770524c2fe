package io.longdoc.engine.runtime;

import io.longdoc.engine.model.ModelConfig;
import java.util.List;

/**
 * Runs the model: one forward step over chunks of several sequences, reading and writing the KV
 * cache blocks the scheduler assigned. The CPU backend and the CUDA backend implement this; the
 * scheduler and the KV block accounting are shared.
 */
public interface Backend extends AutoCloseable {
    ModelConfig config();

    String name();

    /** Number of KV blocks this backend's cache holds, and tokens per block. */
    int kvBlocks();

    int kvBlockSize();

    /**
     * Computes the step; returns the logits (vocab) for each requested position, chunk by chunk,
     * in the order of {@code logitsAt}.
     */
    float[][] forward(List<Chunk> chunks);

    /** A row whose next token the backend chooses itself: the request's sampling and its sampler's state. */
    record DeviceSample(SamplingParams params, int[] seenWords, long draw) {
    }

    /** True when {@link #forwardAndSample} chooses tokens on the device (only ids cross to the host). */
    default boolean samplesOnDevice() {
        return false;
    }

    /**
     * Like {@link #forward}, but returns for each wanted row (in the same order) the token the
     * sampler would choose from its logits, given that row's {@link DeviceSample}.
     */
    default int[] forwardAndSample(List<Chunk> chunks, List<DeviceSample> rows) {
        throw new UnsupportedOperationException(name() + " samples on the host");
    }

    @Override
    void close();
}
