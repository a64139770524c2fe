package io.longdoc.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Settings no shared tokenizer has, on models trained here by the sentencepiece library itself:
 * NFKC normalization (a precompiled charsmap), whitespace-spanning pieces (the whole-text BPE
 * path), whitespace as suffix, no dummy prefix, user-defined symbols.
 */
class TrainedModelParityTest {
    @TempDir
    static Path tmp;
    static Path corpus;
    static List<String> texts;

    @BeforeAll
    static void prepare() throws Exception {
        SentencePieceReference.requireAvailable();
        List<String> docs = SentencePieceParityTest.levalTexts();
        StringBuilder sb = new StringBuilder();
        for (String d : docs.subList(0, 12)) {
            sb.append(d, 0, Math.min(d.length(), 25_000)).append('\n');
        }
        sb.append("ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３ ﬁnance ① ② ｶﾞｷﾞ 你好，世界！\n".repeat(20));
        corpus = tmp.resolve("corpus.txt");
        Files.writeString(corpus, sb.toString(), StandardCharsets.UTF_8);
        texts = new ArrayList<>();
        for (String d : docs.subList(12, 20)) {
            texts.add(d.substring(0, Math.min(d.length(), 20_000)));
        }
        texts.addAll(List.of("ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３", "the ﬁrst ligature", "①②③ ㍿ ｶﾞ", "A\u030A and \u00C5",
                "  many   spaces\u3000and ideographic space  ", "<sep> user [INST] symbols[INST]x", "", " ", "\t\n",
                "zero\u200Bwidth and soft\u00ADhyphen", "🦙🦙 emoji"));
    }

    static Path train(String name, String optionsJson) throws Exception {
        Path script = tmp.resolve("spm_train.py");
        try (InputStream in = TrainedModelParityTest.class.getResourceAsStream("/spm_train.py")) {
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        Path prefix = tmp.resolve(name);
        Process p = new ProcessBuilder(SentencePieceReference.PYTHON, script.toString(), corpus.toString(), prefix.toString(), optionsJson)
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES));
        assertEquals(0, p.exitValue(), log);
        return Path.of(prefix + ".model");
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"vocab_size\": 800, \"normalization_rule_name\": \"nmt_nfkc\", \"byte_fallback\": true, \"user_defined_symbols\": [\"<sep>\", \"[INST]\"]}",
        "{\"vocab_size\": 800, \"normalization_rule_name\": \"nfkc_cf\", \"remove_extra_whitespaces\": false, \"add_dummy_prefix\": false}",
        "{\"vocab_size\": 800, \"normalization_rule_name\": \"identity\", \"split_by_whitespace\": false, \"byte_fallback\": true}",
        "{\"vocab_size\": 800, \"normalization_rule_name\": \"nmt_nfkc\", \"treat_whitespace_as_suffix\": true}",
    })
    void trainedModelMatchesSentencepiece(String options) throws Exception {
        Path model = train("m" + Math.abs(options.hashCode()), options);
        List<int[]> expected = SentencePieceReference.encode(model, texts);
        SentencePieceTokenizer tok = SentencePieceTokenizer.load(model);
        for (int i = 0; i < texts.size(); i++) {
            int[] actual = tok.encode(texts.get(i));
            if (!Arrays.equals(expected.get(i), actual)) {
                int at = Arrays.mismatch(expected.get(i), actual);
                throw new AssertionError(options + ": text #" + i + " differs at id index " + at + ": expected "
                        + Arrays.toString(Arrays.copyOfRange(expected.get(i), Math.max(0, at - 3), Math.min(expected.get(i).length, at + 5)))
                        + " got " + Arrays.toString(Arrays.copyOfRange(actual, Math.max(0, at - 3), Math.min(actual.length, at + 5))));
            }
        }
    }
}
