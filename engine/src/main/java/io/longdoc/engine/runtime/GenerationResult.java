package io.longdoc.engine.runtime;

/**
 * What a request produced: the generated ids (a final EOS or stop id included), why it stopped
 * ({@code eos}, {@code length}, {@code stop}), and timings. {@code stop} is also the reason when a
 * constraint completed (the JSON closed); then the last id is content, not a stop id.
 */
public record GenerationResult(int[] promptIds, int[] outputIds, String finishReason, boolean endsWithStopId,
                               long queuedNanos, long totalNanos) {
    /** The generated ids without a final EOS or stop id. */
    public int[] contentIds() {
        if (outputIds.length > 0 && endsWithStopId) {
            return java.util.Arrays.copyOf(outputIds, outputIds.length - 1);
        }
        return outputIds;
    }
}
