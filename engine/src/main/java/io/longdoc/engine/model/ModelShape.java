package io.longdoc.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The sizes of a LLaMA-family transformer, read from a Hugging Face {@code config.json}: enough
 * to count parameters and estimate the FLOPs of a forward pass.
 */
public record ModelShape(String architecture, int hiddenSize, int intermediateSize, int layers, int heads, int kvHeads,
                         int headDim, int vocabSize, int maxPositionEmbeddings) {

    public static ModelShape fromModelDir(Path dir) {
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new IllegalArgumentException("model directory " + dir + " has no config.json");
        }
        JsonNode c;
        try {
            c = new ObjectMapper().readTree(config.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException(config + " is not valid JSON: " + e.getMessage(), e);
        }
        if (c == null || !c.isObject()) {
            throw new IllegalArgumentException(config + " is not a JSON object");
        }
        int hidden = required(c, "hidden_size", config);
        int heads = required(c, "num_attention_heads", config);
        int kv = c.path("num_key_value_heads").asInt(heads);
        int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
        String arch = c.path("architectures").path(0).asText("unknown");
        return new ModelShape(arch, hidden, required(c, "intermediate_size", config), required(c, "num_hidden_layers", config),
                heads, kv, headDim, required(c, "vocab_size", config), c.path("max_position_embeddings").asInt(0));
    }

    private static int required(JsonNode c, String key, Path file) {
        JsonNode v = c.get(key);
        if (v == null || !v.canConvertToInt() || v.asInt() <= 0) {
            throw new IllegalArgumentException(file + ": '" + key + "' is missing or not a positive integer");
        }
        return v.asInt();
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
