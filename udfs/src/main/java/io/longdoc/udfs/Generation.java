package io.longdoc.udfs;

import io.longdoc.engine.constrain.JsonConstraint;
import io.longdoc.engine.constrain.JsonSchema;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.GenerationResult;
import io.longdoc.engine.runtime.SamplingParams;
import java.util.concurrent.CompletableFuture;

/**
 * One document's generation, as the run job and the SQL functions both do it: plain for
 * summarize; for extract, constrained to the schema and, when the JSON has not closed by
 * max_new_tokens, generated once more with a fresh seed (sampling at the retry temperature when
 * the first try was greedy, since a greedy rerun would repeat itself).
 */
public final class Generation {
    private Generation() {
    }

    /** The last generation of a document, how many it took, and the time and tokens of all of them. */
    public record Attempt(GenerationResult result, int tries, long nanos, int tokens) {
        /** True when an extraction ran out of tokens on its retry too. */
        public boolean jsonUnclosed() {
            return result.finishReason().equals("length");
        }
    }

    public static CompletableFuture<Attempt> run(Engine engine, int[] prompt, SamplingParams first, JsonSchema schema, float retryTemperature) {
        if (schema == null) {
            return engine.submit(prompt, first).thenApply(r -> new Attempt(r, 1, r.totalNanos(), r.outputIds().length));
        }
        return engine.submit(prompt, first, new JsonConstraint(schema, engine.tokenTrie())).thenCompose(r -> {
            if (!r.finishReason().equals("length")) {
                return CompletableFuture.completedFuture(new Attempt(r, 1, r.totalNanos(), r.outputIds().length));
            }
            return engine.submit(prompt, retryParams(first, retryTemperature), new JsonConstraint(schema, engine.tokenTrie()))
                    .thenApply(r2 -> new Attempt(r2, 2, r.totalNanos() + r2.totalNanos(), r.outputIds().length + r2.outputIds().length));
        });
    }

    /** The retry of an extraction that did not close: a fresh seed, and sampling if the first try was greedy. */
    static SamplingParams retryParams(SamplingParams first, float retryTemperature) {
        long seed = first.seed() * 0x5DEECE66DL + 0xB;
        return first.withSeed(seed).withTemperature(first.isGreedy() ? retryTemperature : first.temperature());
    }
}
