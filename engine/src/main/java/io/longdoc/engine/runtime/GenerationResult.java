package io.longdoc.engine.runtime;

/**
 * What a request produced: the generated ids (a final EOS or stop id included), why it stopped
 * ({@code eos}, {@code length}, {@code stop}), and timings.
 */
public record GenerationResult(int[] promptIds, int[] outputIds, String finishReason, long queuedNanos, long totalNanos) {
    /** The generated ids without a final EOS or stop id. */
    public int[] contentIds() {
        if (outputIds.length > 0 && (finishReason.equals("eos") || finishReason.equals("stop"))) {
            return java.util.Arrays.copyOf(outputIds, outputIds.length - 1);
        }
        return outputIds;
    }
}
