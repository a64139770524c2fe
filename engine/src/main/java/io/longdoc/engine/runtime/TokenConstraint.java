package io.longdoc.engine.runtime;

/**
 * Restricts which tokens a request may generate (constrained decoding). The scheduler asks for a
 * mask before each sample and reports the token chosen; once {@link #isComplete()} the request
 * finishes with reason {@code stop}. One instance per request: it holds that request's state.
 */
public interface TokenConstraint {
    /** Sets the logits of every token not allowed now to negative infinity; throws when no token is allowed. */
    void mask(float[] logits);

    /** Moves past a generated token (one that {@link #mask} allowed). */
    void accept(int token);

    /** True when the output is complete and nothing more may be generated. */
    boolean isComplete();
}
