package io.longdoc.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Identical ids to the sentencepiece library for every shared tokenizer, test vector and corpus document. */
class SentencePieceParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Names used in spm-reference-encodings.json, and the folder of each under tokenizers/. */
    private static final Map<String, String> VECTOR_MODELS = Map.of(
            "tok512", "tok512", "llama2-32000", "llama2", "mistral-v3", "mistral-v3", "chinese-llama2", "chinese-llama2");

    private static SentencePieceTokenizer tokenizer(String name) {
        return SentencePieceTokenizer.load(Shared.require("tokenizers/" + name + "/tokenizer.model"));
    }

    @Test
    void spmReferenceEncodingsOfEveryModel() throws Exception {
        JsonNode root = JSON.readTree(Shared.require("tokenizers/vectors/spm-reference-encodings.json").toFile());
        JsonNode inputs = root.get("inputs");
        int compared = 0;
        for (Map.Entry<String, String> e : VECTOR_MODELS.entrySet()) {
            SentencePieceTokenizer tok = tokenizer(e.getValue());
            JsonNode ids = root.get("models").get(e.getKey()).get("ids");
            assertEquals(inputs.size(), ids.size());
            for (int i = 0; i < inputs.size(); i++) {
                String text = inputs.get(i).asText();
                int[] expected = JSON.treeToValue(ids.get(i), int[].class);
                assertArrayEquals(expected, tok.encode(text), e.getKey() + " input #" + i + ": " + JSON.writeValueAsString(text));
                compared++;
            }
        }
        assertEquals(4 * 57, compared);
    }

    @Test
    void llamaCppVocabVectors() throws Exception {
        SentencePieceTokenizer tok = tokenizer("llama2");
        String inp = Files.readString(Shared.require("tokenizers/vectors/ggml-vocab-llama-spm.gguf.inp"), StandardCharsets.UTF_8);
        List<String> out = Files.readAllLines(Shared.require("tokenizers/vectors/ggml-vocab-llama-spm.gguf.out"), StandardCharsets.UTF_8);
        String[] texts = inp.split("\n__ggml_vocab_test__\n", -1);
        // The file ends with a separator, so the last split element is empty and has no line in .out.
        int cases = texts[texts.length - 1].isEmpty() ? texts.length - 1 : texts.length;
        assertEquals(out.size(), cases);
        for (int i = 0; i < cases; i++) {
            String line = out.get(i).trim();
            int[] expected = line.isEmpty() ? new int[0] : Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            assertArrayEquals(expected, tok.encode(texts[i]), "llama.cpp case #" + i + ": " + JSON.writeValueAsString(texts[i]));
        }
    }

    @Test
    void llamaTokenizerJsCases() throws Exception {
        SentencePieceTokenizer tok = tokenizer("llama2");
        JsonNode cases = JSON.readTree(Shared.require("tokenizers/vectors/llama-tokenizer-js.cases.json").toFile()).get("cases");
        assertTrue(cases.size() > 0);
        for (JsonNode c : cases) {
            int[] withBos = JSON.treeToValue(c.get("expected_ids_with_bos"), int[].class);
            int[] ids = tok.encode(c.get("input").asText());
            int[] actual = new int[ids.length + 1];
            actual[0] = tok.model().bosId();
            System.arraycopy(ids, 0, actual, 1, ids.length);
            assertArrayEquals(withBos, actual, c.get("input").asText());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "mistral-v3", "chinese-llama2", "tok512"})
    void everyLevalDocumentMatchesSentencepiece(String name) throws Exception {
        SentencePieceReference.requireAvailable();
        Path model = Shared.require("tokenizers/" + name + "/tokenizer.model");
        List<String> docs = levalTexts();
        // A few hard cases beside the corpus: whitespace runs, emoji, CJK, control characters.
        docs.add("  leading and   inner   spaces \t\n tabs ");
        docs.add("你好，世界！这是一个测试。Mixed 中文 and English 🦙 text");
        docs.add("\u0000\u0001 control \u007f and U+FFFD \uFFFD");
        docs.add("[INST] user-defined pieces [/INST] [TOOL_CALLS]");
        List<int[]> expected = SentencePieceReference.encode(model, docs);
        SentencePieceTokenizer tok = SentencePieceTokenizer.load(model);
        for (int i = 0; i < docs.size(); i++) {
            int[] actual = tok.encode(docs.get(i));
            if (!Arrays.equals(expected.get(i), actual)) {
                int at = Arrays.mismatch(expected.get(i), actual);
                throw new AssertionError(name + " document #" + i + " differs from sentencepiece at id index " + at
                        + " (expected " + expected.get(i).length + " ids, got " + actual.length + ")");
            }
        }
    }

    @Test
    void loneSurrogatesAreTokenizedAsTheReplacementCharacter() {
        SentencePieceTokenizer tok = tokenizer("llama2");
        assertArrayEquals(tok.encode("a\uFFFDb\uFFFD"), tok.encode("a\uD800b\uDC00"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "chinese-llama2", "tok512"})
    void decodeRoundTripsCorpusText(String name) throws Exception {
        SentencePieceTokenizer tok = tokenizer(name);
        for (String doc : levalTexts().subList(0, 10)) {
            String text = doc.substring(0, Math.min(3000, doc.length()));
            String expected = tok.model().removeExtraWhitespaces ? text.replaceAll("^ +| +$", "").replaceAll(" +", " ") : text;
            assertEquals(expected, tok.decode(tok.encode(text)));
        }
        assertEquals("你好 🦙", tok.decode(tok.encode("你好 🦙")));
    }

    static List<String> levalTexts() throws Exception {
        Path dir = Shared.require("corpus/leval");
        List<String> texts = new ArrayList<>();
        try (var files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".jsonl")).sorted().toList()) {
                for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                    if (!line.isBlank()) {
                        texts.add(JSON.readTree(line).get("input").asText());
                    }
                }
            }
        }
        return texts;
    }
}
