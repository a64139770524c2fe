package io.longdoc.job;

import com.typesafe.config.Config;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.prompt.ChatFormat;
import io.longdoc.engine.prompt.PromptTemplate;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.GenerationResult;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

/** {@code longdoc generate}: one prompt through the engine, in a plain JVM. */
public final class GenerateCommand {
    private GenerateCommand() {
    }

    static Args args() {
        return new Args("generate", "--model DIR (--prompt TEXT | --ids 1,2,3 | --ids @FILE) [options]")
                .option("model", "DIR", "Hugging Face model directory")
                .option("prompt", "TEXT", "prompt text (@FILE reads it from a file)")
                .option("ids", "LIST", "raw input ids, comma-separated or @FILE (no template, no BOS added)")
                .flag("chat", "wrap the prompt in the model family's chat format")
                .option("template", "NAME", "built-in template around the prompt as document: index-zh, index-en, plain-en")
                .option("max-new-tokens", "N", "tokens to generate at most (default 256, or the template's)")
                .option("temperature", "T", "0 = greedy (default; a template is greedy)")
                .option("top-k", "K", "keep the K most likely tokens when sampling (0 = off; default 50, as Hugging Face)")
                .option("top-p", "P", "nucleus sampling mass (1 = off)")
                .option("repetition-penalty", "R", "HF repetition penalty over prompt and output (1 = off)")
                .option("seed", "S", "random seed for sampling")
                .flag("ignore-eos", "keep generating past EOS")
                .flag("print-ids", "print {\"ids\":[...]} of the generated ids instead of text")
                .option("backend", "B", "cpu | cuda | auto");
    }

    static int run(Args args, Config config) throws Exception {
        int modes = (args.has("prompt") ? 1 : 0) + (args.has("ids") ? 1 : 0);
        if (modes != 1) {
            throw new UsageException("generate: give exactly one of --prompt or --ids");
        }
        if (args.has("ids") && (args.has("chat") || args.has("template"))) {
            throw new UsageException("generate: --ids feeds raw ids; --chat and --template wrap a --prompt text, not ids");
        }
        Config g = config.getConfig("longdoc.generate");
        PromptTemplate template = null;
        if (args.has("template")) {
            try {
                template = PromptTemplate.builtIn(args.get("template"));
            } catch (IllegalArgumentException e) {
                throw new UsageException(e.getMessage());
            }
        }
        try (Engine engine = EngineOptions.load(args, config)) {
            SamplingParams params = sampling(args, g, template, engine.config().generation());
            int[] prompt = args.has("ids") ? parseIds(args.get("ids"), engine.config().vocabSize())
                    : promptIds(engine, readText(args.get("prompt")), args.has("chat"), template);
            GenerationResult r;
            try {
                r = engine.submit(prompt, params).get();
            } catch (ExecutionException e) {
                if (e.getCause() instanceof IllegalArgumentException bad) {
                    throw new UsageException("generate: " + bad.getMessage());
                }
                throw e;
            }
            if (args.has("print-ids")) {
                System.out.println("{\"ids\":[" + Arrays.stream(r.outputIds()).mapToObj(String::valueOf).collect(Collectors.joining(",")) + "]}");
            } else {
                // UTF-8 whatever the locale: under C/POSIX, Java 17's System.out would print '?' for non-ASCII text.
                PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
                out.println(requireTokenizer(engine).decode(r.contentIds()));
            }
            int padsIgnored = prompt.length - engine.attended(prompt).length;
            System.err.printf(Locale.ROOT, "%d prompt tokens%s, %d generated (%s) in %.2f s; first token after %.2f s, then %.1f tok/s%n",
                    prompt.length, padsIgnored == 0 ? "" : " (" + padsIgnored + " of them the pad id, not attended: longdoc.engine.mask-pad-in-prompt)",
                    r.outputIds().length, r.finishReason(), r.totalNanos() / 1e9, Math.max(0, r.firstTokenNanos()) / 1e9,
                    r.decodeTokensPerSecond());
        }
        return 0;
    }

    /**
     * Each sampling setting from, first to last: its command-line option; the template's (max new
     * tokens, repetition penalty, and greedy: the built-in templates are the seed demo's greedy
     * decoding, as in the run job); {@code longdoc.generate.*} when set; the model's
     * {@code generation_config.json}, read as Hugging Face generate reads it (without
     * {@code do_sample: true} it is greedy; its top_k and top_p apply whenever sampling, top_k 50
     * where it has none); else greedy, 256 new tokens, no penalty.
     */
    static SamplingParams sampling(Args args, Config g, PromptTemplate template, ModelConfig.GenerationDefaults model) {
        boolean modelSamples = Boolean.TRUE.equals(model.doSample());
        float modelTemperature = !modelSamples ? 0f : model.temperature() != null ? model.temperature().floatValue() : 1f;
        int maxNew = args.getInt("max-new-tokens") != null ? args.getInt("max-new-tokens")
                : template != null ? template.maxNewTokens()
                : g.hasPath("max-new-tokens") ? g.getInt("max-new-tokens")
                : model.maxNewTokens() != null ? model.maxNewTokens() : 256;
        float repetition = args.getDouble("repetition-penalty") != null ? args.getDouble("repetition-penalty").floatValue()
                : template != null ? template.repetitionPenalty()
                : g.hasPath("repetition-penalty") ? (float) g.getDouble("repetition-penalty")
                : model.repetitionPenalty() != null ? model.repetitionPenalty().floatValue() : 1f;
        float temperature = args.getDouble("temperature") != null ? args.getDouble("temperature").floatValue()
                : template != null ? 0f
                : g.hasPath("temperature") ? (float) g.getDouble("temperature") : modelTemperature;
        int topK = args.getInt("top-k") != null ? args.getInt("top-k") : g.hasPath("top-k") ? g.getInt("top-k")
                : model.topK() != null ? model.topK() : 50;
        float topP = args.getDouble("top-p") != null ? args.getDouble("top-p").floatValue()
                : g.hasPath("top-p") ? (float) g.getDouble("top-p")
                : model.topP() != null ? model.topP().floatValue() : 1f;
        long seed = args.getLong("seed") != null ? args.getLong("seed") : g.hasPath("seed") ? g.getLong("seed") : 0;
        try {
            return new SamplingParams(maxNew, temperature, topK, topP, repetition, seed, args.has("ignore-eos"), new int[0]);
        } catch (IllegalArgumentException e) {
            throw new UsageException("generate: " + e.getMessage());
        }
    }

    static int[] promptIds(Engine engine, String text, boolean chat, PromptTemplate template) {
        Tokenizer tok = requireTokenizer(engine);
        if (template != null) {
            ChatFormat format = ChatFormat.forTemplate(template, engine.config());
            return format.wrap(tok, template.system(), template.userText(text));
        }
        if (chat) {
            return ChatFormat.of(engine.config()).wrap(tok, null, text);
        }
        return tok.encode(text, tok.addsBos(), false);
    }

    static Tokenizer requireTokenizer(Engine engine) {
        if (engine.tokenizer() == null) {
            throw new UsageException("the model directory has no tokenizer.model: use --ids and --print-ids");
        }
        return engine.tokenizer();
    }

    static String readText(String value) throws IOException {
        if (value.startsWith("@")) {
            Path p = Path.of(value.substring(1));
            if (!Files.isRegularFile(p)) {
                throw new UsageException(value + ": no such file");
            }
            return Files.readString(p, StandardCharsets.UTF_8);
        }
        // The JVM decodes its command line in the locale's encoding (deploy/longdoc picks a UTF-8 one).
        String argumentEncoding = System.getProperty("sun.jnu.encoding", "UTF-8");
        if (!argumentEncoding.replace("-", "").equalsIgnoreCase("UTF8") && !value.chars().allMatch(ch -> ch < 128 && ch != '?')) {
            System.err.println("warning: the command line was decoded as " + argumentEncoding
                    + ", so non-ASCII text in --prompt may have been altered; use a UTF-8 locale or --prompt @FILE");
        }
        return value;
    }

    static int[] parseIds(String value, int vocab) throws IOException {
        String list = value.startsWith("@") ? readText(value) : value;
        String[] parts = list.trim().split("[,\\s]+");
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                throw new UsageException("--ids: '" + parts[i] + "' is not a token id");
            }
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new UsageException("--ids: " + ids[i] + " is outside the vocabulary (size " + vocab + ")");
            }
        }
        return ids;
    }
}
