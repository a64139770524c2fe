package io.longdoc.job.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.job.Main;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import java.io.BufferedReader;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * {@code longdoc bench-tokenizer}: single-thread tokenizer throughput against sentencepiece's
 * C++ encoder (python3-sentencepiece, one thread) on the same texts, in the same run, after
 * checking that both give identical ids. Reports the best of N rounds for each.
 */
public final class TokenizerBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizerBench() {
    }

    public static Args args() {
        return new Args("bench-tokenizer", "--tokenizer FILE --corpus PATH [--field input] [--rounds 5] [--out FILE.json]")
                .option("tokenizer", "FILE", "a tokenizer.model (the peer reads the same file)")
                .option("corpus", "PATH", "a JSONL file or a directory of them")
                .option("field", "NAME", "field holding the text (default: input, as in L-Eval)")
                .option("rounds", "N", "timed rounds for each side; the best is reported (default 5)")
                .option("python", "EXE", "python with the sentencepiece module (default /usr/bin/python3)")
                .option("out", "FILE", "also write the result as JSON here");
    }

    public static int run(Args args, Config config) throws Exception {
        Path model = Path.of(args.require("tokenizer"));
        if (Files.isDirectory(model)) {
            model = model.resolve("tokenizer.model");
        }
        Tokenizer tokenizer = Main.loadTokenizer(model.toString());
        List<String> texts = readTexts(Path.of(args.require("corpus")), args.get("field", "input"));
        int rounds = args.getInt("rounds") == null ? 5 : args.getInt("rounds");
        long chars = texts.stream().mapToLong(String::length).sum();

        // Warm up the JIT, then time whole passes over the corpus.
        List<int[]> javaIds = new ArrayList<>();
        for (int w = 0; w < 3; w++) {
            for (String t : texts) {
                tokenizer.encode(t);
            }
        }
        double javaBest = Double.MAX_VALUE;
        for (int r = 0; r < rounds; r++) {
            javaIds.clear();
            long start = System.nanoTime();
            for (String t : texts) {
                javaIds.add(tokenizer.encode(t));
            }
            javaBest = Math.min(javaBest, (System.nanoTime() - start) / 1e9);
        }
        long tokens = javaIds.stream().mapToLong(a -> a.length).sum();

        Path dir = Files.createTempDirectory("longdoc-bench");
        Path textsFile = dir.resolve("texts.jsonl");
        try (var w = Files.newBufferedWriter(textsFile, StandardCharsets.UTF_8)) {
            for (String t : texts) {
                w.write(JSON.writeValueAsString(t));
                w.write('\n');
            }
        }
        Path script = dir.resolve("spm_bench.py");
        try (InputStream in = TokenizerBench.class.getResourceAsStream("/spm_bench.py")) {
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        Path peerIds = dir.resolve("ids.jsonl");
        Process p = new ProcessBuilder(args.get("python", "/usr/bin/python3"), script.toString(), model.toString(),
                textsFile.toString(), String.valueOf(rounds), peerIds.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String peerOut = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new IllegalStateException("sentencepiece peer failed (is python3-sentencepiece installed?): " + peerOut);
        }
        JsonNode peer = JSON.readTree(peerOut);
        int mismatches = 0;
        try (BufferedReader r = Files.newBufferedReader(peerIds, StandardCharsets.UTF_8)) {
            for (int[] ids : javaIds) {
                if (!Arrays.equals(ids, JSON.readValue(r.readLine(), int[].class))) {
                    mismatches++;
                }
            }
        }
        double peerSeconds = peer.get("seconds").asDouble();
        ObjectNode result = JSON.createObjectNode();
        result.put("tokenizer", model.toString());
        result.put("documents", texts.size());
        result.put("chars", chars);
        result.put("tokens", tokens);
        result.put("identical_ids", mismatches == 0);
        result.put("longdoc_seconds", javaBest);
        result.put("sentencepiece_seconds", peerSeconds);
        result.put("sentencepiece_version", peer.path("version").asText());
        result.put("longdoc_tokens_per_s", tokens / javaBest);
        result.put("sentencepiece_tokens_per_s", peer.get("tokens").asLong() / peerSeconds);
        result.put("ratio", peerSeconds / javaBest);
        result.put("rounds", rounds);
        System.out.printf(Locale.ROOT, "%-14s %10s %12s %12s%n", "", "seconds", "tokens/s", "MB/s");
        System.out.printf(Locale.ROOT, "%-14s %10.3f %12.0f %12.2f%n", "longdoc", javaBest, tokens / javaBest, chars / javaBest / 1e6);
        System.out.printf(Locale.ROOT, "%-14s %10.3f %12.0f %12.2f%n", "sentencepiece", peerSeconds, tokens / peerSeconds, chars / peerSeconds / 1e6);
        System.out.printf(Locale.ROOT, "ratio %.2fx, %d documents, %d tokens, ids identical: %s%n",
                peerSeconds / javaBest, texts.size(), tokens, mismatches == 0 ? "yes" : "NO (" + mismatches + " documents differ)");
        if (args.has("out")) {
            Files.writeString(Path.of(args.get("out")), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result) + "\n");
        }
        return mismatches == 0 ? 0 : 1;
    }

    static List<String> readTexts(Path corpus, String field) throws Exception {
        List<Path> files = new ArrayList<>();
        if (Files.isDirectory(corpus)) {
            try (var s = Files.list(corpus)) {
                s.filter(f -> f.toString().endsWith(".jsonl")).sorted().forEach(files::add);
            }
        } else if (Files.isRegularFile(corpus)) {
            files.add(corpus);
        } else {
            throw new UsageException("--corpus " + corpus + ": no such file or directory");
        }
        List<String> texts = new ArrayList<>();
        for (Path f : files) {
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode v = JSON.readTree(line).get(field);
                if (v != null && v.isTextual()) {
                    texts.add(v.asText());
                }
            }
        }
        if (texts.isEmpty()) {
            throw new UsageException("--corpus " + corpus + ": no texts in field '" + field + "'");
        }
        return texts;
    }
}
