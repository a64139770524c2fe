package io.longdoc.engine.model;

import java.nio.file.Path;

/**
 * The sizes of a LLaMA-family transformer, read from a Hugging Face {@code config.json}: enough
 * to count parameters and estimate the FLOPs of a forward pass.
 */
public record ModelShape(String architecture, int hiddenSize, int intermediateSize, int layers, int heads, int kvHeads,
                         int headDim, int vocabSize, int maxPositionEmbeddings) {

    /** From a model directory's config.json, as the engine reads it (same validation). */
    public static ModelShape fromModelDir(Path dir) {
        ModelConfig c;
        try {
            c = ModelConfig.load(dir);
        } catch (ModelFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        return new ModelShape(c.architecture(), c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.headDim(),
                c.vocabSize(), c.maxPositions());
    }

    /** Weights of the transformer layers (attention, MLP, norms), without embedding and head. */
    public long layerParameters() {
        long attention = (long) hiddenSize * heads * headDim        // q_proj
                + 2L * hiddenSize * kvHeads * headDim                 // k_proj, v_proj
                + (long) heads * headDim * hiddenSize;                // o_proj
        long mlp = 3L * hiddenSize * intermediateSize;                // gate, up, down
        return layers * (attention + mlp + 2L * hiddenSize) + hiddenSize;
    }

    /**
     * FLOPs to prefill one sequence of {@code n} tokens and compute logits for its last position:
     * 2·n per layer weight, causal attention (QKᵀ and AV over n(n+1)/2 query-key pairs per head),
     * and the LM head once.
     */
    public double prefillFlops(long n) {
        double linear = 2.0 * n * layerParameters();
        double attention = 2.0 * 2.0 * layers * heads * headDim * (n * (n + 1) / 2.0);
        double head = 2.0 * hiddenSize * vocabSize;
        return linear + attention + head;
    }
}
