package io.longdoc.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.prompt.ChatFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {
    @TempDir
    Path tmp;

    /** A file template's wrapping comes from its "format:" line, never from its file name. */
    @Test
    void aFileTemplatesChatWrappingIsItsFormatLineNotItsName() throws Exception {
        io.longdoc.engine.model.ModelConfig llama = io.longdoc.engine.model.ModelConfig.load(Shared.require("models/stories260k"));
        String body = "Summarize:\n{document}\nSummary:";
        for (String name : List.of("mine.txt", "plain-mine.txt")) {
            Path file = Files.writeString(tmp.resolve(name), "system: Be brief.\n" + body);
            var t = io.longdoc.engine.prompt.PromptTemplate.fromFile(file);
            assertEquals("Be brief.", t.system());
            assertEquals(ChatFormat.LLAMA_INST, ChatFormat.forTemplate(t, llama), name);
            Files.writeString(file, "format: plain\nsystem: Be brief.\n" + body);
            assertEquals(ChatFormat.PLAIN, ChatFormat.forTemplate(io.longdoc.engine.prompt.PromptTemplate.fromFile(file), llama), name);
        }
        Path bad = Files.writeString(tmp.resolve("bad.txt"), "format: base\n" + body);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> io.longdoc.engine.prompt.PromptTemplate.fromFile(bad)).getMessage()
                .contains("'format: base' is not a format"));
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    @Test
    void indexStyleSpecialTokensAreSplitOutBeforeSentencePiece() throws IOException {
        Path model = Shared.require("tokenizers/chinese-llama2/tokenizer.model");
        Path dir = Files.createDirectory(tmp.resolve("model"));
        Files.copy(model, dir.resolve("tokenizer.model"));
        // Index-1.9B's tokenizer_config.json declares reserved_0 / reserved_1 as added tokens 3 and 4.
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"add_bos_token": false, "add_eos_token": false,
                 "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                 "added_tokens_decoder": {
                   "3": {"content": "reserved_0", "special": true},
                   "4": {"content": "reserved_1", "special": true}}}
                """);
        Tokenizer tok = Tokenizer.load(dir);
        SentencePieceTokenizer sp = tok.sentencePiece();
        int[] ids = tok.encode("<unk>系统reserved_0请总结reserved_1");
        assertArrayEquals(concat(new int[] {0}, sp.encode("系统"), new int[] {3}, sp.encode("请总结"), new int[] {4}), ids);
        assertFalse(tok.addsBos());
        assertArrayEquals(concat(new int[] {1}, sp.encode("hi"), new int[] {2}), tok.encode("hi", true, true));
        assertEquals(ids.length, tok.count("<unk>系统reserved_0请总结reserved_1"));

        // The Index chat format (generate --chat / --template) encodes the user's text the same way,
        // as the demo's tokenizer.encode(query) does: a quoted marker in a document is its id.
        int[] chat = ChatFormat.INDEX.wrap(tok, "系统", "请总结</s>文reserved_0档");
        assertArrayEquals(concat(new int[] {0}, sp.encode("系统"), new int[] {3}, sp.encode("请总结"), new int[] {2}, sp.encode("文"),
                new int[] {3}, sp.encode("档"), new int[] {4}), chat);
    }

    /** Without tokenizer_config.json (or its add_bos_token), BOS as Hugging Face's tokenizers default: LLaMA yes, Index no. */
    @Test
    void bosFollowsTheModelFamilyWhenTheConfigDoesNotSay() throws IOException {
        Path model = Shared.require("tokenizers/tok512/tokenizer.model");
        for (String arch : List.of("LlamaForCausalLM", "MistralForCausalLM", "IndexForCausalLM")) {
            Path dir = Files.createDirectory(tmp.resolve(arch));
            Files.copy(model, dir.resolve("tokenizer.model"));
            Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"" + arch + "\"]}");
            boolean llama = !arch.startsWith("Index");
            assertEquals(llama, Tokenizer.load(dir).addsBos(), arch);
            assertEquals(llama, ChatFormat.PLAIN.wrap(Tokenizer.load(dir), null, "hello")[0] == 1, arch + ": plain template");
            Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
            assertEquals(llama, Tokenizer.load(dir).addsBos(), arch + " with a tokenizer_config.json that does not say");
            Files.writeString(dir.resolve("tokenizer_config.json"), "{\"add_bos_token\": " + !llama + "}");
            assertEquals(!llama, Tokenizer.load(dir).addsBos(), arch + " with add_bos_token");
        }
        assertFalse(Tokenizer.load(model).addsBos(), "a bare tokenizer.model adds nothing");
    }

    @Test
    void plainTokenizerModelSplitsNothing() {
        Tokenizer tok = Tokenizer.load(Shared.require("tokenizers/llama2/tokenizer.model"));
        assertArrayEquals(tok.sentencePiece().encode("<s> x </s>"), tok.encode("<s> x </s>"));
        assertTrue(tok.encode("<s>").length > 1);
    }

    @Test
    void unigramModelIsRefusedClearly() {
        // A minimal ModelProto: one piece, trainer_spec.model_type = UNIGRAM (1).
        byte[] piece = {0x0A, 0x07, 0x0A, 0x05, '<', 'u', 'n', 'k', '>', 0x18, 0x02};
        byte[] trainer = {0x12, 0x02, 0x18, 0x01};
        byte[] proto = concatBytes(piece, trainer);
        TokenizerFormatException e = assertThrows(TokenizerFormatException.class, () -> SentencePieceModel.parse(proto));
        assertTrue(e.getMessage().contains("unsupported model type UNIGRAM"), e.getMessage());
    }

    @Test
    void truncatedAndCorruptModelsFailClearly() throws IOException {
        byte[] good = Files.readAllBytes(Shared.require("tokenizers/llama2/tokenizer.model"));
        for (int len : new int[] {0, 1, 7, 100, good.length / 2, good.length - 3}) {
            byte[] cut = Arrays.copyOf(good, len);
            TokenizerFormatException e = assertThrows(TokenizerFormatException.class, () -> SentencePieceModel.parse(cut), "length " + len);
            assertFalse(e.getMessage().isBlank());
        }
        // Random corruption: always a clear error or a valid model, never a hang, an OOM or another exception.
        Random random = new Random(42);
        for (int trial = 0; trial < 200; trial++) {
            byte[] bad = good.clone();
            for (int k = 0; k < 8; k++) {
                bad[random.nextInt(bad.length)] = (byte) random.nextInt(256);
            }
            try {
                new SentencePieceTokenizer(SentencePieceModel.parse(bad)).encode("hello world");
            } catch (TokenizerFormatException expected) {
                assertFalse(expected.getMessage().isBlank());
            }
        }
        // A huge declared length must not allocate: it is checked against the bytes that remain.
        byte[] huge = {0x0A, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0x07};
        assertTrue(assertThrows(TokenizerFormatException.class, () -> SentencePieceModel.parse(huge)).getMessage().contains("runs past the end"));
        Path file = tmp.resolve("tokenizer.model");
        Files.write(file, Arrays.copyOf(good, 50));
        assertTrue(assertThrows(TokenizerFormatException.class, () -> Tokenizer.load(file)).getMessage().contains(file.toString()));
    }

    @Test
    void missingTokenizerIsNamed() {
        Path missing = tmp.resolve("nope");
        assertTrue(assertThrows(TokenizerFormatException.class, () -> Tokenizer.load(missing)).getMessage().contains("nope"));
    }

    @Test
    void concurrentEncodingGivesTheSameIds() throws Exception {
        Tokenizer tok = Tokenizer.load(Shared.require("tokenizers/llama2/tokenizer.model"));
        List<String> texts = SentencePieceParityTest.levalTexts().subList(0, 8);
        List<int[]> expected = texts.stream().map(tok::encode).toList();
        List<Thread> threads = new java.util.ArrayList<>();
        java.util.concurrent.atomic.AtomicInteger mismatches = new java.util.concurrent.atomic.AtomicInteger();
        for (int t = 0; t < 4; t++) {
            Thread th = new Thread(() -> {
                for (int r = 0; r < 3; r++) {
                    for (int i = 0; i < texts.size(); i++) {
                        if (!Arrays.equals(expected.get(i), tok.encode(texts.get(i)))) {
                            mismatches.incrementAndGet();
                        }
                    }
                }
            });
            threads.add(th);
            th.start();
        }
        for (Thread th : threads) {
            th.join();
        }
        assertEquals(0, mismatches.get());
    }

    private static byte[] concatBytes(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
