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
        Path launcher = TestPaths.projectRoot().resolve("deploy/longdoc");
        String[] cmd = new String[args.length + 2];
        cmd[0] = "bash";
        cmd[1] = launcher.toString();
        System.arraycopy(args, 0, cmd, 2, args.length);
        Process p = new ProcessBuilder(cmd).start();
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
