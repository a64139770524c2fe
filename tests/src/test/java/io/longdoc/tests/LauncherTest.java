package io.longdoc.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** deploy/longdoc as users call it: tokenize's output, --help, and exit codes. */
class LauncherTest {
    @TempDir
    Path tmp;

    record Result(int exit, String out, String err) {
    }

    static Result longdoc(String... args) throws Exception {
        return longdoc(java.util.Map.of(), args);
    }

    /** The launcher with these environment variables set. */
    static Result longdoc(java.util.Map<String, String> env, String... args) throws Exception {
        Path launcher = TestPaths.projectRoot().resolve("deploy/longdoc");
        String[] cmd = new String[args.length + 2];
        cmd[0] = "bash";
        cmd[1] = launcher.toString();
        System.arraycopy(args, 0, cmd, 2, args.length);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        Process p = pb.start();
        var out = p.getInputStream().readAllBytes();
        var err = p.getErrorStream().readAllBytes();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "launcher timed out");
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }

    @Test
    void tokenizePrintsOneLinePerInputLineInOrder() throws Exception {
        Path model = TestPaths.shared("tokenizers/llama2/tokenizer.model");
        List<String> texts = List.of("Hello world", "", "  spaces  and\ttabs", "长文档 🦙");
        Path jsonl = tmp.resolve("in.jsonl");
        Files.write(jsonl, texts.stream().map(t -> "{\"text\":\"" + t.replace("\t", "\\t") + "\",\"n\":1}").toList(), StandardCharsets.UTF_8);
        Tokenizer tok = Tokenizer.load(model);

        Result r = longdoc("tokenize", "--tokenizer", model.toString(), "--jsonl", jsonl.toString());
        assertEquals(0, r.exit(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(texts.size(), lines.size());
        for (int i = 0; i < texts.size(); i++) {
            String ids = Arrays.stream(tok.encode(texts.get(i))).mapToObj(String::valueOf).collect(Collectors.joining(","));
            assertEquals("{\"ids\":[" + ids + "]}", lines.get(i));
        }

        Result counted = longdoc("tokenize", "--tokenizer", model.toString(), "--jsonl", jsonl.toString(), "--count", "--add-bos");
        assertEquals(0, counted.exit(), counted.err());
        List<String> counts = counted.out().lines().toList();
        for (int i = 0; i < texts.size(); i++) {
            assertEquals(String.valueOf(tok.encode(texts.get(i)).length + 1), counts.get(i));
        }
    }

    @Test
    void badUsageAndBadInputExitTwo() throws Exception {
        Path model = TestPaths.shared("tokenizers/llama2/tokenizer.model");
        Path jsonl = tmp.resolve("bad.jsonl");
        Files.writeString(jsonl, "{\"text\":\"ok\"}\nnot json\n");
        Result r = longdoc("tokenize", "--tokenizer", model.toString(), "--jsonl", jsonl.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("line 2"), r.err());
        assertEquals(2, longdoc("tokenize", "--tokenizer", model.toString()).exit());
        assertEquals(2, longdoc("nonsense").exit());
        Result badSeed = longdoc("generate", "--model", TestPaths.shared("models/stories260k").toString(), "--ids", "1", "--seed", "abc");
        assertEquals(2, badSeed.exit());
        assertTrue(badSeed.err().contains("--seed"), badSeed.err());
        Result cuda = longdoc("generate", "--model", TestPaths.shared("models/stories260k").toString(), "--ids", "1", "--backend", "cuda");
        assertEquals(2, cuda.exit());
        assertTrue(cuda.err().contains("--backend cuda: "), cuda.err());   // followed by why (no driver here)
        Result noField = longdoc("tokenize", "--tokenizer", model.toString(), "--jsonl", jsonl.toString(), "--field", "body");
        assertEquals(2, noField.exit());
        assertTrue(noField.err().contains("'body'"), noField.err());
        String stories = TestPaths.shared("models/stories260k").toString();
        Result badWarmup = longdoc("bench", "--model", stories, "--warmup-seconds", "soon");
        assertEquals(2, badWarmup.exit());
        assertTrue(badWarmup.err().contains("--warmup-seconds"), badWarmup.err());
        Result noRounds = longdoc("bench", "--model", stories, "--rounds", "0");
        assertEquals(2, noRounds.exit());
        assertTrue(noRounds.err().contains("--rounds"), noRounds.err());
        Result badDtype = longdoc("bench", "--shape", "110m", "--dtype", "f8", "--work", tmp.resolve("bench").toString());
        assertEquals(2, badDtype.exit());
        assertTrue(badDtype.err().contains("--dtype"), badDtype.err());
        Result badContext = longdoc("bench", "--shape", "110m", "--context", "1", "--work", tmp.resolve("bench").toString());
        assertEquals(2, badContext.exit());
        assertTrue(badContext.err().contains("--context"), badContext.err());
        Result badKvType = longdoc("generate", "--model", stories, "--ids", "1", "-Dlongdoc.engine.kv-cache-type=fp8");
        assertEquals(2, badKvType.exit());
        assertTrue(badKvType.err().contains("KV cache type 'fp8': expected f32 or bf16"), badKvType.err());
    }

    @Test
    void benchMeasuresEveryPathAndDecodeAfterALongPrompt() throws Exception {
        Path json = tmp.resolve("bench.json");
        Result r = longdoc("bench", "--model", TestPaths.shared("models/stories260k").toString(), "--warmup-seconds", "0",
                "--rounds", "1", "--tokens", "16", "--concurrency", "2", "--out", json.toString());
        assertEquals(0, r.exit(), r.err());
        // Context 512: the 511-token prefill prompt, shortened to leave room for the 16 new tokens.
        assertTrue(r.out().contains("after a 496-token prompt: first token in "), r.out());
        String written = Files.readString(json);
        for (String figure : List.of("decode_tokens_per_s", "batched_tokens_per_s", "prefill_tokens_per_s",
                "decode_after_prompt_tokens_per_s", "first_token_seconds")) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"" + figure + "\" : ([0-9.Ee+-]+)").matcher(written);
            assertTrue(m.find(), figure + " missing from " + written);
            assertTrue(Double.parseDouble(m.group(1)) > 0, figure + " is not positive in " + written);
        }
    }

    /** The ids of {@code text} by the sentencepiece Python package (the reference tokenizer). */
    static List<Integer> sentencePiece(Path model, String text) throws Exception {
        Process p = new ProcessBuilder("/usr/bin/python3", "-c",
                "import sys, sentencepiece as s; print(' '.join(map(str, s.SentencePieceProcessor(model_file=sys.argv[1]).encode(sys.stdin.read()))))",
                model.toString()).start();
        p.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(1, TimeUnit.MINUTES) && p.exitValue() == 0, new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
        return out.isEmpty() ? List.of() : Arrays.stream(out.split(" ")).map(Integer::valueOf).toList();
    }

    static String ids(Result r) {
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("{\"ids\":["), r.out());
        return r.out().trim();
    }

    @Test
    void generateTakesTextIdsFilesTemplatesAndTheModelsDefaults() throws Exception {
        Path stories = TestPaths.shared("models/stories260k");
        String text = "Once upon a time, Lily saw a big red ball";
        // --prompt: BOS (LLaMA) + the reference tokenizer's ids, the same tokens as --ids with them.
        List<Integer> encoded = new java.util.ArrayList<>(List.of(1));
        encoded.addAll(sentencePiece(stories.resolve("tokenizer.model"), text));
        String idList = encoded.stream().map(String::valueOf).collect(Collectors.joining(","));
        String byIds = ids(longdoc("generate", "--model", stories.toString(), "--ids", idList, "--max-new-tokens", "12", "--print-ids"));
        assertEquals(byIds, ids(longdoc("generate", "--model", stories.toString(), "--prompt", text, "--max-new-tokens", "12", "--print-ids")));
        Path textFile = tmp.resolve("prompt.txt");
        Files.writeString(textFile, text);
        Path idsFile = tmp.resolve("ids.txt");
        Files.writeString(idsFile, idList.replace(",", "\n") + "\n");
        assertEquals(byIds, ids(longdoc("generate", "--model", stories.toString(), "--prompt", "@" + textFile, "--max-new-tokens", "12", "--print-ids")));
        assertEquals(byIds, ids(longdoc("generate", "--model", stories.toString(), "--ids", "@" + idsFile, "--max-new-tokens", "12", "--print-ids")));
        Result asText = longdoc("generate", "--model", stories.toString(), "--prompt", text, "--max-new-tokens", "12");
        assertEquals(0, asText.exit(), asText.err());
        assertTrue(asText.err().contains(encoded.size() + " prompt tokens, 12 generated"), asText.err());
        assertTrue(!asText.out().isBlank() && !asText.out().contains("{\"ids\""), asText.out());

        // generation_config.json's defaults, as Hugging Face reads them: greedy without do_sample, its
        // max_new_tokens; with do_sample, its temperature and top_k. Options still win.
        Path withDefaults = Files.createDirectories(tmp.resolve("stories-gen"));
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.model")) {
            Files.copy(stories.resolve(f), withDefaults.resolve(f));
        }
        String greedy7 = ids(longdoc("generate", "--model", stories.toString(), "--ids", "1", "--max-new-tokens", "7", "--ignore-eos", "--print-ids"));
        Files.writeString(withDefaults.resolve("generation_config.json"), "{\"do_sample\": false, \"temperature\": 0.7, \"max_new_tokens\": 7}");
        assertEquals(greedy7, ids(longdoc("generate", "--model", withDefaults.toString(), "--ids", "1", "--ignore-eos", "--print-ids")));
        Files.writeString(withDefaults.resolve("generation_config.json"), "{\"do_sample\": true, \"temperature\": 1.5, \"top_k\": 40, \"max_new_tokens\": 30}");
        String sampled = ids(longdoc("generate", "--model", withDefaults.toString(), "--ids", "1", "--ignore-eos", "--seed", "11", "--print-ids"));
        assertEquals(sampled, ids(longdoc("generate", "--model", stories.toString(), "--ids", "1", "--ignore-eos", "--seed", "11",
                "--max-new-tokens", "30", "--temperature", "1.5", "--top-k", "40", "--print-ids")));
        assertTrue(!sampled.equals(ids(longdoc("generate", "--model", stories.toString(), "--ids", "1", "--ignore-eos",
                "--max-new-tokens", "30", "--print-ids"))), "sampling at temperature 1.5 is not the greedy answer");
        assertEquals(greedy7, ids(longdoc("generate", "--model", withDefaults.toString(), "--ids", "1", "--ignore-eos", "--temperature", "0",
                "--max-new-tokens", "7", "--print-ids")));
        // A template is greedy whatever the model's file says, as the demo it stands for is.
        String templatedGreedy = ids(longdoc("generate", "--model", stories.toString(), "--prompt", text, "--template", "plain-en",
                "--max-new-tokens", "10", "--ignore-eos", "--print-ids"));
        for (String seed : List.of("1", "2")) {
            assertEquals(templatedGreedy, ids(longdoc("generate", "--model", withDefaults.toString(), "--prompt", text, "--template", "plain-en",
                    "--max-new-tokens", "10", "--ignore-eos", "--seed", seed, "--print-ids")), "seed " + seed);
        }
        // Sampling asked for on the command line keeps Hugging Face's top_k of 50 unless told otherwise.
        String hot = ids(longdoc("generate", "--model", stories.toString(), "--ids", "1", "--ignore-eos", "--seed", "5",
                "--max-new-tokens", "40", "--temperature", "2", "--print-ids"));
        assertEquals(hot, ids(longdoc("generate", "--model", stories.toString(), "--ids", "1", "--ignore-eos", "--seed", "5",
                "--max-new-tokens", "40", "--temperature", "2", "--top-k", "50", "--print-ids")));
        assertTrue(!hot.equals(ids(longdoc("generate", "--model", stories.toString(), "--ids", "1", "--ignore-eos", "--seed", "5",
                "--max-new-tokens", "40", "--temperature", "2", "--top-k", "0", "--print-ids"))), "top-k 50 and no top-k sample differently");
        Result idsAndChat = longdoc("generate", "--model", stories.toString(), "--ids", "1", "--chat");
        assertEquals(2, idsAndChat.exit());
        assertTrue(idsAndChat.err().contains("--ids feeds raw ids"), idsAndChat.err());
        // Under a C locale (as on many cluster nodes) the prompt is still read as UTF-8.
        String unicode = "“Hello,” said Lily — 你好";
        Result cLocale = longdoc(java.util.Map.of("LC_ALL", "C", "LANG", "C"), "generate", "--model", stories.toString(), "--prompt", unicode,
                "--max-new-tokens", "2", "--print-ids");
        assertEquals(0, cLocale.exit(), cLocale.err());
        int unicodeTokens = 1 + sentencePiece(stories.resolve("tokenizer.model"), unicode).size();
        assertTrue(cLocale.err().contains(unicodeTokens + " prompt tokens, 2 generated"), cLocale.err());
        Files.writeString(withDefaults.resolve("generation_config.json"), "{\"do_sample\": \"yes\"}");
        Result badConfig = longdoc("generate", "--model", withDefaults.toString(), "--ids", "1");
        assertEquals(2, badConfig.exit());
        assertTrue(badConfig.err().contains("generation_config.json: 'do_sample' is \"yes\""), badConfig.err());

        // --template index-zh on the Index-architecture model: [0] system [3] framed document [4].
        Path index = TestPaths.shared("models/index-tiny-random");
        String system = "你是由哔哩哔哩人工智能平台部自主研发的大语言模型，名为“Index”。你能够根据用户传入的信息，帮助用户完成指定的任务，并生成恰当的、符合要求的回复。";
        String document = "The quick brown fox jumps over the lazy dog.";
        int expectedPrompt = 3 + sentencePiece(index.resolve("tokenizer.model"), system).size()
                + sentencePiece(index.resolve("tokenizer.model"), "请用中文总结以下内容：\n\n\n\n\n\n" + document + "\n\n\n\n\n\n请用中文总结以上内容：").size();
        Result templated = longdoc("generate", "--model", index.toString(), "--prompt", document, "--template", "index-zh", "--max-new-tokens", "5",
                "--print-ids");
        assertEquals(0, templated.exit(), templated.err());
        assertTrue(templated.err().contains(expectedPrompt + " prompt tokens (1 of them the pad id, not attended"), templated.err());
        Result chat = longdoc("generate", "--model", index.toString(), "--prompt", document, "--chat", "--max-new-tokens", "5", "--print-ids");
        assertEquals(0, chat.exit(), chat.err());
        int expectedChat = 2 + sentencePiece(index.resolve("tokenizer.model"), document).size();   // [3] document [4]
        assertTrue(chat.err().contains(expectedChat + " prompt tokens, 5 generated"), chat.err());
    }

    /** score's JSON against the float64 reference logits of ../shared/models/index-tiny-random. */
    @Test
    void scorePrintsTheLogitsOfEachPosition() throws Exception {
        Path index = TestPaths.shared("models/index-tiny-random");
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var ref = json.readTree(index.resolve("reference.json").toFile()).get("logits");
        String ids = java.util.stream.StreamSupport.stream(ref.get("input_ids").spliterator(), false).map(n -> n.asText())
                .collect(Collectors.joining(","));
        String positions = java.util.stream.StreamSupport.stream(ref.get("positions_checked").spliterator(), false).map(n -> n.asText())
                .collect(Collectors.joining(","));
        Result r = longdoc("score", "--model", index.toString(), "--ids", ids, "--positions", positions);
        assertEquals(0, r.exit(), r.err());
        var printed = json.readTree(r.out());
        for (var p : ref.get("positions_checked")) {
            var expected = ref.get("logits_at").get(p.asText());
            var actual = printed.get(p.asText());
            assertEquals(expected.size(), actual.size(), "position " + p);
            double scale = 0, worst = 0;
            for (int i = 0; i < expected.size(); i++) {
                scale = Math.max(scale, Math.abs(expected.get(i).asDouble()));
                worst = Math.max(worst, Math.abs(expected.get(i).asDouble() - actual.get(i).asDouble()));
            }
            assertTrue(worst <= 1e-3 * scale, "position " + p + ": off by " + worst + " of " + scale);
        }
        assertEquals(ref.get("positions_checked").size(), printed.size());
        Result twice = longdoc("score", "--model", index.toString(), "--ids", ids, "--positions", "1,1");
        assertEquals(2, twice.exit());
        assertTrue(twice.err().contains("--positions: 1 is given twice"), twice.err());

        // Weights that make the logits NaN: still valid JSON (null for each), and a warning.
        Path stories = TestPaths.shared("models/stories260k");
        Path broken = Files.createDirectories(tmp.resolve("stories-nan"));
        Files.copy(stories.resolve("config.json"), broken.resolve("config.json"));
        byte[] weights = Files.readAllBytes(stories.resolve("model.safetensors"));
        long headerLength = java.nio.ByteBuffer.wrap(weights, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        var header = json.readTree(new String(weights, 8, (int) headerLength, StandardCharsets.UTF_8));
        int at = 8 + (int) headerLength + header.get("model.norm.weight").get("data_offsets").get(0).asInt();
        java.nio.ByteBuffer.wrap(weights, at, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(Float.NaN);
        Files.write(broken.resolve("model.safetensors"), weights);
        Result nan = longdoc("score", "--model", broken.toString(), "--ids", "1,403,407", "--positions", "2");
        assertEquals(0, nan.exit(), nan.err());
        var nulls = json.readTree(nan.out()).get("2");
        assertEquals(512, nulls.size());
        for (var v : nulls) {
            assertTrue(v.isNull(), "a NaN logit printed as " + v);
        }
        assertTrue(nan.err().contains("512 logits were not finite numbers (printed as null)"), nan.err());
    }

    /**
     * A 12 000-token prompt through a JVM of 300 MB: the prefill goes in chunks and its attention in
     * tiles, so it needs the KV cache (48 MB here) and nothing of T×T (576 MB of scores at this length).
     */
    @Test
    void aLongPromptNeedsNoTimesTMemory() throws Exception {
        Path index = TestPaths.shared("models/index-tiny-random");   // context 32 768
        int tokens = 12_000;
        Path ids = tmp.resolve("long-ids.txt");
        java.util.Random random = new java.util.Random(4);
        StringBuilder list = new StringBuilder();
        for (int i = 0; i < tokens; i++) {
            list.append(5 + random.nextInt(500)).append(i + 1 < tokens ? "," : "\n");
        }
        Files.writeString(ids, list);
        Path launcher = TestPaths.projectRoot().resolve("deploy/longdoc");
        ProcessBuilder pb = new ProcessBuilder("bash", launcher.toString(), "score", "--model", index.toString(), "--ids", "@" + ids,
                "--positions", String.valueOf(tokens - 1), "-Dlongdoc.engine.kv-cache-mb=64");
        pb.environment().put("LONGDOC_JAVA_OPTS", "-Xmx300m");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "score timed out");
        assertEquals(0, p.exitValue(), err);
        var logits = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out).get(String.valueOf(tokens - 1));
        assertEquals(512, logits.size());
        for (var v : logits) {
            assertTrue(Double.isFinite(v.asDouble()), "a finite logit: " + v);
        }

        // A KV cache larger than the heap is refused when the engine loads, not an OutOfMemoryError.
        pb.environment().put("LONGDOC_JAVA_OPTS", "-Xmx60m");
        Process small = pb.start();
        small.getInputStream().readAllBytes();
        String smallErr = new String(small.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(small.waitFor(5, TimeUnit.MINUTES), "score timed out");
        assertEquals(2, small.exitValue(), smallErr);
        assertTrue(smallErr.contains("KV cache (64 MB") && smallErr.contains("does not fit this JVM's heap"), smallErr);
    }

    @Test
    void everySubcommandHasHelp() throws Exception {
        Result top = longdoc("--help");
        assertEquals(0, top.exit());
        for (String sub : List.of("demo", "run", "stats", "tokenize", "generate", "score", "bench", "bench-tokenizer")) {
            assertTrue(top.out().contains(sub));
            Result h = longdoc(sub, "--help");
            assertEquals(0, h.exit(), sub);
            assertTrue(h.out().contains("usage: longdoc " + sub), h.out());
        }
    }
}
