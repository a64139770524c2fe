package io.longdoc.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's tokenizer as Hugging Face's slow tokenizer uses it: the special and added tokens of
 * {@code tokenizer_config.json} (e.g. Index-1.9B's {@code <unk>}, {@code <s>}, {@code </s>},
 * {@code reserved_0}, {@code reserved_1}) are split out of the text first and map straight to
 * their ids; each stretch of text between them is encoded by SentencePiece.
 *
 * <p>Loaded from a {@code tokenizer.model} file (plain SentencePiece, nothing split out) or from a
 * model directory. Thread-safe.
 */
public final class Tokenizer {
    private final SentencePieceTokenizer sentencePiece;
    private final List<SpecialToken> specials;
    private final boolean addBos, addEos;
    private final String source;

    /** A string that is never split: its id, and whether whitespace beside it is swallowed. */
    public record SpecialToken(String content, int id, boolean lstrip, boolean rstrip) {
    }

    public Tokenizer(SentencePieceTokenizer sentencePiece, List<SpecialToken> specials, boolean addBos, boolean addEos, String source) {
        this.sentencePiece = sentencePiece;
        // Longest first, so that when two match at the same place the longer one wins.
        this.specials = specials.stream().sorted(Comparator.comparingInt((SpecialToken s) -> -s.content().length())).toList();
        this.addBos = addBos;
        this.addEos = addEos;
        this.source = source;
    }

    /** From a {@code tokenizer.model} file, or a model directory holding one. */
    public static Tokenizer load(Path path) {
        if (!Files.exists(path)) {
            throw new TokenizerFormatException("tokenizer not found: " + path);
        }
        if (!Files.isDirectory(path)) {
            return new Tokenizer(SentencePieceTokenizer.load(path), List.of(), false, false, path.toString());
        }
        Path model = path.resolve("tokenizer.model");
        if (!Files.isRegularFile(model)) {
            throw new TokenizerFormatException("model directory " + path + " has no tokenizer.model");
        }
        SentencePieceTokenizer sp = SentencePieceTokenizer.load(model);
        Path config = path.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(config)) {
            // Hugging Face's LlamaTokenizer adds BOS unless its config says otherwise; Index's never does.
            return new Tokenizer(sp, List.of(), !isIndexModel(path), false, path.toString());
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(config.toFile());
        } catch (IOException e) {
            throw new TokenizerFormatException(config + " is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new TokenizerFormatException(config + " is not a JSON object");
        }
        Map<String, SpecialToken> specials = new LinkedHashMap<>();
        JsonNode decoder = root.path("added_tokens_decoder");
        for (Iterator<Map.Entry<String, JsonNode>> it = decoder.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException ex) {
                throw new TokenizerFormatException(config + ": added_tokens_decoder key '" + e.getKey() + "' is not a token id");
            }
            String content = e.getValue().path("content").asText(null);
            if (content == null || content.isEmpty()) {
                throw new TokenizerFormatException(config + ": added token " + id + " has no content");
            }
            if (id < 0 || id >= sp.vocabSize()) {
                throw new TokenizerFormatException(config + ": added token '" + content + "' has id " + id + " outside the vocabulary (size " + sp.vocabSize() + ")");
            }
            specials.put(content, new SpecialToken(content, id,
                    e.getValue().path("lstrip").asBoolean(false), e.getValue().path("rstrip").asBoolean(false)));
        }
        for (String key : List.of("bos_token", "eos_token", "unk_token", "pad_token")) {
            JsonNode node = root.get(key);
            if (node == null || node.isNull()) {
                continue;
            }
            String content = node.isTextual() ? node.asText() : node.path("content").asText(null);
            if (content == null || content.isEmpty() || specials.containsKey(content)) {
                continue;
            }
            int id = sp.pieceToId(content);
            if (id < 0) {
                throw new TokenizerFormatException(config + ": " + key + " '" + content + "' is not a piece of tokenizer.model");
            }
            specials.put(content, new SpecialToken(content, id, node.path("lstrip").asBoolean(false), node.path("rstrip").asBoolean(false)));
        }
        boolean bos = root.hasNonNull("add_bos_token") ? root.get("add_bos_token").asBoolean() : !isIndexModel(path);
        boolean eos = root.path("add_eos_token").asBoolean(false);
        return new Tokenizer(sp, new ArrayList<>(specials.values()), bos, eos, path.toString());
    }

    /** Whether the directory's config.json names the Index architecture (false when it has none or it does not parse). */
    private static boolean isIndexModel(Path dir) {
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            return false;
        }
        try {
            return "IndexForCausalLM".equals(new ObjectMapper().readTree(config.toFile()).path("architectures").path(0).asText());
        } catch (IOException e) {
            return false;   // the model loader reports a broken config.json
        }
    }

    public SentencePieceTokenizer sentencePiece() {
        return sentencePiece;
    }

    public List<SpecialToken> specialTokens() {
        return specials;
    }

    /**
     * Whether a BOS goes before the text: {@code add_bos_token} of tokenizer_config.json; where it
     * does not say, as Hugging Face's tokenizers default (LLaMA and Mistral yes, Index no); never
     * for a bare tokenizer.model.
     */
    public boolean addsBos() {
        return addBos;
    }

    public boolean addsEos() {
        return addEos;
    }

    public int bosId() {
        return sentencePiece.model().bosId();
    }

    public int eosId() {
        return sentencePiece.model().eosId();
    }

    public int vocabSize() {
        return sentencePiece.vocabSize();
    }

    public String source() {
        return source;
    }

    /** The ids of {@code text} alone: special strings split out, no BOS or EOS added. */
    public int[] encode(String text) {
        IntList out = new IntList();
        encodeInto(text, out);
        return out.toArray();
    }

    public int[] encode(String text, boolean withBos, boolean withEos) {
        IntList out = new IntList();
        if (withBos) {
            out.add(bosId());
        }
        encodeInto(text, out);
        if (withEos) {
            out.add(eosId());
        }
        return out.toArray();
    }

    /** Number of ids of {@code text} alone (the statistics stage's token count). */
    public int count(String text) {
        if (specials.isEmpty()) {
            return sentencePiece.count(text);
        }
        IntList out = new IntList();
        encodeInto(text, out);
        return out.size();
    }

    public void encodeInto(String text, IntList out) {
        if (specials.isEmpty()) {
            sentencePiece.encodeInto(text, out);
            return;
        }
        int pos = 0;
        int segmentStart = 0;
        while (pos <= text.length()) {
            SpecialToken match = null;
            int matchAt = text.length();
            for (SpecialToken s : specials) {
                int at = text.indexOf(s.content(), pos);
                if (at >= 0 && at < matchAt) {
                    matchAt = at;
                    match = s;
                }
            }
            if (match == null) {
                break;
            }
            int segmentEnd = matchAt;
            if (match.lstrip()) {
                while (segmentEnd > segmentStart && Character.isWhitespace(text.charAt(segmentEnd - 1))) {
                    segmentEnd--;
                }
            }
            if (segmentEnd > segmentStart) {
                sentencePiece.encodeInto(text.substring(segmentStart, segmentEnd), out);
            }
            out.add(match.id());
            pos = matchAt + match.content().length();
            if (match.rstrip()) {
                while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
                    pos++;
                }
            }
            segmentStart = pos;
        }
        if (segmentStart < text.length()) {
            sentencePiece.encodeInto(segmentStart == 0 ? text : text.substring(segmentStart), out);
        }
    }

    /** The bytes a generated id adds to the text, or null for special and control ids (see {@link SentencePieceTokenizer#pieceBytes}). */
    public byte[] tokenBytes(int id) {
        for (SpecialToken st : specials) {
            if (st.id() == id) {
                return null;
            }
        }
        return sentencePiece.pieceBytes(id);
    }

    public String decode(int[] ids) {
        return sentencePiece.decode(ids);
    }
}
