package io.longdoc.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A LLaMA-family model's {@code config.json} (and {@code generation_config.json}), validated:
 * an unknown architecture or a key that would change the math and is not implemented is refused,
 * never ignored.
 */
public record ModelConfig(
        String architecture,
        int dim,                 // hidden_size
        int hiddenDim,           // intermediate_size (SwiGLU)
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int vocabSize,
        int maxPositions,
        float normEps,
        double ropeBase,         // (rope_theta or 10000) × (rope_ratio or 1)
        RopeScaling ropeScaling,
        int slidingWindow,       // 0: none
        boolean tiedEmbeddings,
        boolean normHead,        // Index: lm_head rows L2-normalised at load
        int bosId,
        int[] eosIds,
        int padId,
        GenerationDefaults generation) {

    private static final Logger LOG = LoggerFactory.getLogger(ModelConfig.class);
    public static final Set<String> ARCHITECTURES = Set.of("LlamaForCausalLM", "MistralForCausalLM", "IndexForCausalLM");

    /**
     * The sampling defaults of {@code generation_config.json}, each null where the file does not
     * set it (or there is no file); Hugging Face {@code generate} uses them when the caller does not.
     */
    public record GenerationDefaults(Boolean doSample, Double temperature, Integer topK, Double topP, Double repetitionPenalty,
                                     Integer maxNewTokens) {
        public static final GenerationDefaults NONE = new GenerationDefaults(null, null, null, null, null, null);
    }

    /** rope_scaling: none, linear, dynamic (NTK) or llama3. */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
        public static final RopeScaling NONE = new RopeScaling("none", 1, 1, 4, 0);
    }

    public boolean isIndex() {
        return architecture.equals("IndexForCausalLM");
    }

    /** Longest sequence the model is meant for: max_position_embeddings, stretched by linear or dynamic RoPE scaling. */
    public int contextLength() {
        String type = ropeScaling.type();
        if (type.equals("linear") || type.equals("dynamic")) {
            return (int) Math.min(Integer.MAX_VALUE, (long) (maxPositions * ropeScaling.factor()));
        }
        return maxPositions;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    public int qDim() {
        return heads * headDim;
    }

    public static ModelConfig load(Path modelDir) {
        Path file = modelDir.resolve("config.json");
        JsonNode c = readJson(file);
        if (c == null) {
            throw new ModelFormatException("model directory " + modelDir + " has no config.json");
        }
        String arch = c.path("architectures").path(0).asText("");
        if (!ARCHITECTURES.contains(arch)) {
            throw new ModelFormatException(file + ": architecture '" + arch + "' is not supported (supported: " + ARCHITECTURES + ")");
        }
        refuseUnsupported(c, file);
        int dim = positive(c, "hidden_size", file);
        int heads = positive(c, "num_attention_heads", file);
        int kvHeads = c.hasNonNull("num_key_value_heads") ? positive(c, "num_key_value_heads", file) : heads;
        if (heads % kvHeads != 0) {
            throw new ModelFormatException(file + ": num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        int headDim = c.hasNonNull("head_dim") ? positive(c, "head_dim", file) : dim / heads;
        if (headDim % 2 != 0) {
            throw new ModelFormatException(file + ": head_dim " + headDim + " must be even for RoPE");
        }
        double theta = c.hasNonNull("rope_theta") ? c.get("rope_theta").asDouble() : 10000.0;
        double ratio = c.hasNonNull("rope_ratio") ? c.get("rope_ratio").asDouble() : 1.0;
        int maxPos = c.path("max_position_embeddings").asInt(2048);
        RopeScaling scaling = ropeScaling(c.get("rope_scaling"), maxPos, file);
        // Hugging Face applies sliding_window to Mistral only; LLaMA and Index configs that carry one ignore it.
        int window = arch.equals("MistralForCausalLM") && c.hasNonNull("sliding_window") ? c.get("sliding_window").asInt() : 0;
        boolean normHead = c.path("norm_head").asBoolean(false) || c.path("norm_head").asInt(0) != 0;

        int bos = c.path("bos_token_id").asInt(1);
        List<Integer> eos = ids(c.get("eos_token_id"));
        int pad = c.path("pad_token_id").asInt(-1);
        Path genFile = modelDir.resolve("generation_config.json");
        JsonNode gen = readJson(genFile);
        GenerationDefaults defaults = GenerationDefaults.NONE;
        for (String setting : unimplementedGenerationSettings(gen)) {
            LOG.warn("{} sets {}, which LongDoc's generation does not implement: it is ignored", genFile, setting);
        }
        if (gen != null) {
            defaults = new GenerationDefaults(flag(gen, "do_sample", genFile), number(gen, "temperature", genFile),
                    integer(gen, "top_k", genFile), number(gen, "top_p", genFile), number(gen, "repetition_penalty", genFile),
                    integer(gen, "max_new_tokens", genFile));
            if (gen.hasNonNull("eos_token_id")) {
                eos = ids(gen.get("eos_token_id"));
            }
            if (gen.hasNonNull("bos_token_id")) {
                bos = gen.get("bos_token_id").asInt();
            }
            if (gen.hasNonNull("pad_token_id")) {
                pad = gen.get("pad_token_id").asInt();
            }
        }
        if (eos.isEmpty()) {
            eos = List.of(2);
        }
        return new ModelConfig(arch, dim, positive(c, "intermediate_size", file), positive(c, "num_hidden_layers", file),
                heads, kvHeads, headDim, positive(c, "vocab_size", file), maxPos,
                (float) c.path("rms_norm_eps").asDouble(1e-6), theta * ratio, scaling, Math.max(0, window),
                c.path("tie_word_embeddings").asBoolean(false), normHead, bos,
                eos.stream().mapToInt(Integer::intValue).toArray(), pad, defaults);
    }

    private static Boolean flag(JsonNode c, String key, Path file) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return null;
        }
        return v.isBoolean() ? v.asBoolean() : wrongType(file, key, v, "true or false");
    }

    private static Double number(JsonNode c, String key, Path file) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return null;
        }
        return v.isNumber() ? v.asDouble() : wrongType(file, key, v, "a number");
    }

    private static Integer integer(JsonNode c, String key, Path file) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return null;
        }
        boolean whole = v.canConvertToInt() && !(v.isFloatingPointNumber() && v.asDouble() != v.asInt());
        return whole ? v.asInt() : wrongType(file, key, v, "an integer");
    }

    private static <T> T wrongType(Path file, String key, JsonNode v, String wanted) {
        throw new ModelFormatException(file + ": '" + key + "' is " + v + ", not " + wanted);
    }

    /** Keys whose non-default values change the computation and are not implemented. */
    private static void refuseUnsupported(JsonNode c, Path file) {
        String act = c.path("hidden_act").asText("silu");
        if (!act.equals("silu") && !act.equals("swish")) {   // Hugging Face's ACT2FN maps both to SiLU
            throw new ModelFormatException(file + ": hidden_act '" + act + "' is not implemented (only silu, also called swish)");
        }
        for (String key : List.of("attention_bias", "mlp_bias", "qk_norm", "use_qk_norm")) {
            if (c.path(key).asBoolean(false)) {
                throw new ModelFormatException(file + ": '" + key + "': true is not implemented");
            }
        }
        if (c.hasNonNull("partial_rotary_factor") && c.get("partial_rotary_factor").asDouble() != 1.0) {
            throw new ModelFormatException(file + ": partial_rotary_factor " + c.get("partial_rotary_factor") + " is not implemented");
        }
        if (c.hasNonNull("quantization_config")) {
            throw new ModelFormatException(file + ": quantized checkpoints (quantization_config) are not supported; use F32/F16/BF16 weights");
        }
        if (c.hasNonNull("rope_interleaved") && c.get("rope_interleaved").asBoolean()) {
            throw new ModelFormatException(file + ": interleaved RoPE is not implemented (HF checkpoints use rotate_half)");
        }
    }

    private static RopeScaling ropeScaling(JsonNode rs, int maxPos, Path file) {
        if (rs == null || rs.isNull()) {
            return RopeScaling.NONE;
        }
        String type = rs.hasNonNull("rope_type") ? rs.get("rope_type").asText() : rs.path("type").asText("");
        double factor = rs.path("factor").asDouble(1.0);
        switch (type) {
            case "default":
                return RopeScaling.NONE;
            case "linear":
            case "dynamic":
                factor = required(rs, type, "factor", file);
                if (factor <= 0) {
                    throw new ModelFormatException(file + ": rope_scaling factor must be positive");
                }
                return new RopeScaling(type, factor, 1, 4, maxPos);
            case "llama3":
                // Hugging Face refuses a llama3 scaling without any of these; no default is assumed here either.
                return new RopeScaling(type, required(rs, type, "factor", file), required(rs, type, "low_freq_factor", file),
                        required(rs, type, "high_freq_factor", file), (int) required(rs, type, "original_max_position_embeddings", file));
            default:
                throw new ModelFormatException(file + ": rope_scaling type '" + type + "' is not implemented (none, linear, dynamic, llama3)");
        }
    }

    private static double required(JsonNode rs, String type, String key, Path file) {
        JsonNode v = rs.get(key);
        if (v == null || !v.isNumber()) {
            throw new ModelFormatException(file + ": rope_scaling '" + type + "' needs a number '" + key + "'");
        }
        return v.asDouble();
    }

    /**
     * Settings of a generation_config.json that change what generate produces and that LongDoc
     * does not implement, with their values ("min_new_tokens=5"); a setting at its Hugging Face
     * default (num_beams 1, no_repeat_ngram_size 0, ...) is not listed. Loading warns about each.
     */
    public static List<String> unimplementedGenerationSettings(JsonNode gen) {
        List<String> out = new ArrayList<>();
        if (gen == null) {
            return out;
        }
        for (String key : List.of("num_beams", "num_beam_groups")) {
            if (gen.path(key).asInt(1) > 1) {
                out.add(key + "=" + gen.get(key));
            }
        }
        for (String key : List.of("min_length", "min_new_tokens", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
                "epsilon_cutoff", "eta_cutoff", "diversity_penalty")) {
            if (gen.path(key).asDouble(0) > 0) {
                out.add(key + "=" + gen.get(key));
            }
        }
        if (gen.hasNonNull("typical_p") && gen.get("typical_p").asDouble() < 1) {
            out.add("typical_p=" + gen.get("typical_p"));
        }
        for (String key : List.of("min_p", "bad_words_ids", "force_words_ids", "forced_bos_token_id", "forced_eos_token_id",
                "sequence_bias", "exponential_decay_length_penalty", "begin_suppress_tokens", "forced_decoder_ids", "guidance_scale")) {
            if (gen.hasNonNull(key) && !(gen.get(key).isContainerNode() && gen.get(key).isEmpty())) {
                out.add(key + "=" + gen.get(key));
            }
        }
        if (gen.path("suppress_tokens").isArray() && !gen.get("suppress_tokens").isEmpty()) {
            out.add("suppress_tokens=" + gen.get("suppress_tokens"));
        }
        return out;
    }

    private static List<Integer> ids(JsonNode n) {
        List<Integer> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            return out;
        }
        if (n.isArray()) {
            for (Iterator<JsonNode> it = n.elements(); it.hasNext(); ) {
                out.add(it.next().asInt());
            }
        } else {
            out.add(n.asInt());
        }
        return out;
    }

    private static int positive(JsonNode c, String key, Path file) {
        JsonNode v = c.get(key);
        if (v == null || !v.canConvertToInt() || v.asInt() <= 0) {
            throw new ModelFormatException(file + ": '" + key + "' is missing or not a positive integer");
        }
        return v.asInt();
    }

    static JsonNode readJson(Path file) {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        try {
            JsonNode n = new ObjectMapper().readTree(file.toFile());
            if (n == null || !n.isObject()) {
                throw new ModelFormatException(file + " is not a JSON object");
            }
            return n;
        } catch (IOException e) {
            throw new ModelFormatException(file + " is not valid JSON: " + e.getMessage(), e);
        }
    }

}
