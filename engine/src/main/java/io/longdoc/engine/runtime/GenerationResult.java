package io.longdoc.engine.runtime;

/**
 * What a request produced: the generated ids (a final EOS or stop id included), why it stopped
 * ({@code eos}, {@code length}, {@code stop}), and timings. {@code stop} is also the reason when a
 * constraint completed (the JSON closed); then the last id is content, not a stop id.
 *
 * @param queuedNanos from submission until the scheduler admitted the request (KV memory free)
 * @param firstTokenNanos from submission until the first generated id (queue and prompt prefill:
 *        the time to first token); −1 when nothing was generated
 * @param totalNanos from submission until the last id
 */
public record GenerationResult(int[] promptIds, int[] outputIds, String finishReason, boolean endsWithStopId,
                               long queuedNanos, long firstTokenNanos, long totalNanos) {
    /**
     * Ids generated per second after the first one, the decode rate of this sequence (while it
     * shared its steps with whatever else was running); 0 with fewer than two ids.
     */
    public double decodeTokensPerSecond() {
        if (outputIds.length < 2 || totalNanos <= firstTokenNanos) {
            return 0;
        }
        return (outputIds.length - 1) / ((totalNanos - firstTokenNanos) / 1e9);
    }

    /** The generated ids without a final EOS or stop id. */
    public int[] contentIds() {
        if (outputIds.length > 0 && endsWithStopId) {
            return java.util.Arrays.copyOf(outputIds, outputIds.length - 1);
        }
        return outputIds;
    }
}
