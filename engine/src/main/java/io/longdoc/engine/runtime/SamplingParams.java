package io.longdoc.engine.runtime;

/**
 * How to pick each next token, with Hugging Face semantics. {@code temperature == 0} is greedy.
 * The repetition penalty applies to every distinct id of the sequence, prompt included:
 * {@code s < 0 ? s * p : s / p}.
 */
public record SamplingParams(int maxNewTokens, float temperature, int topK, float topP, float repetitionPenalty,
                             long seed, boolean ignoreEos, int[] stopIds) implements java.io.Serializable {
    public static SamplingParams greedy(int maxNewTokens) {
        return new SamplingParams(maxNewTokens, 0f, 0, 1f, 1f, 0, false, new int[0]);
    }

    public SamplingParams {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("max_new_tokens must not be negative");
        }
        if (temperature < 0 || Float.isNaN(temperature)) {
            throw new IllegalArgumentException("temperature must be >= 0");
        }
        if (topP <= 0 || topP > 1) {
            throw new IllegalArgumentException("top_p must be in (0, 1]");
        }
        if (repetitionPenalty <= 0) {
            throw new IllegalArgumentException("repetition_penalty must be positive");
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must not be negative");
        }
        stopIds = stopIds == null ? new int[0] : stopIds.clone();
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }

    public SamplingParams withIgnoreEos(boolean ignore) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, ignore, stopIds);
    }

    public SamplingParams withTemperature(float t) {
        return new SamplingParams(maxNewTokens, t, topK, topP, repetitionPenalty, seed, ignoreEos, stopIds);
    }

    public SamplingParams withSeed(long newSeed) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, repetitionPenalty, newSeed, ignoreEos, stopIds);
    }
}
