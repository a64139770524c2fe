package io.longdoc.engine.constrain;

import io.longdoc.engine.runtime.TokenConstraint;

/**
 * Constrains one request's output to compact JSON valid for a schema: before each token, every
 * token whose bytes cannot continue a valid text is masked out; the request completes when the
 * root object closes. End-of-sequence is never allowed before that, so an output either closes
 * its JSON or runs out of tokens.
 */
public final class JsonConstraint implements TokenConstraint {
    private final TokenTrie trie;
    private JsonGrammar.State state;

    public JsonConstraint(JsonSchema schema, TokenTrie trie) {
        this.trie = trie;
        this.state = JsonGrammar.start(schema);
    }

    @Override
    public void mask(float[] logits) {
        long[] bits = trie.mask(state);
        boolean any = false;
        int n = Math.min(logits.length, trie.vocabSize());
        for (int id = 0; id < n; id++) {
            if ((bits[id >>> 6] & (1L << (id & 63))) == 0) {
                logits[id] = Float.NEGATIVE_INFINITY;
            } else {
                any = true;
            }
        }
        if (!any) {
            throw new IllegalStateException("no token of the vocabulary can continue the JSON here");
        }
        // Ids past the tokenizer's vocabulary (padded embedding rows) are never text.
        for (int id = n; id < logits.length; id++) {
            logits[id] = Float.NEGATIVE_INFINITY;
        }
    }

    @Override
    public void accept(int token) {
        byte[] bytes = trie.bytes(token);
        JsonGrammar.State next = bytes == null ? null : JsonGrammar.feed(state, bytes);
        if (next == null) {
            throw new IllegalStateException("token " + token + " does not continue the JSON (it was not allowed)");
        }
        state = next;
    }

    @Override
    public boolean isComplete() {
        return state.isComplete();
    }
}
