package io.longdoc.job;

import com.typesafe.config.Config;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.engine.tokenizer.TokenizerFormatException;
import io.longdoc.job.bench.TokenizerBench;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.GateTrippedException;
import io.longdoc.job.cli.LongDocConfig;
import io.longdoc.job.cli.UsageException;
import io.longdoc.job.demo.DemoCommand;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Entry point of {@code deploy/longdoc} and of the job jar under spark-submit:
 * {@code longdoc SUBCOMMAND [options]}.
 *
 * <p>Exit codes: 0 ok, 2 bad usage or bad input (the message names the problem), 3 a gate
 * tripped, 1 any other failure.
 */
public final class Main {
    public static final int OK = 0, FAILURE = 1, BAD_INPUT = 2, GATE = 3;

    interface Command {
        int run(Args args, Config config) throws Exception;
    }

    private record Subcommand(String summary, Supplier<Args> args, Command command) {
    }

    private static final Map<String, Subcommand> COMMANDS = new LinkedHashMap<>();

    static {
        COMMANDS.put("demo", new Subcommand("generate a sample corpus and run the pipeline on it", DemoCommand::args, DemoCommand::run));
        COMMANDS.put("run", new Subcommand("the main job: stats, truncation, inference, Parquet output (Spark)", RunCommand::args, RunCommand::run));
        COMMANDS.put("stats", new Subcommand("token-length report and truncation gate (Spark)", StatsCommand::args, StatsCommand::run));
        COMMANDS.put("tokenize", new Subcommand("print token ids of JSONL texts (plain JVM)", TokenizeCommand::args, TokenizeCommand::run));
        COMMANDS.put("generate", new Subcommand("generate text from a prompt (plain JVM)", GenerateCommand::args, GenerateCommand::run));
        COMMANDS.put("score", new Subcommand("teacher-forced logits at given positions (plain JVM)", ScoreCommand::args, ScoreCommand::run));
        COMMANDS.put("bench", new Subcommand("CPU engine throughput, against llama2.c's run.c (plain JVM)", io.longdoc.job.bench.EngineBench::args, io.longdoc.job.bench.EngineBench::run));
        COMMANDS.put("bench-tokenizer", new Subcommand("tokenizer throughput against sentencepiece (plain JVM)", TokenizerBench::args, TokenizerBench::run));
    }

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    public static int run(String[] argv) {
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("-h") || argv[0].equals("help")) {
            System.out.println(usage());
            return argv.length == 0 ? BAD_INPUT : OK;
        }
        Subcommand sub = COMMANDS.get(argv[0]);
        if (sub == null) {
            System.err.println("longdoc: unknown subcommand '" + argv[0] + "'\n\n" + usage());
            return BAD_INPUT;
        }
        try {
            Args args = sub.args().get().parse(Arrays.copyOfRange(argv, 1, argv.length));
            if (args.wantsHelp()) {
                System.out.println(sub.summary() + "\n\n" + args.help());
                return OK;
            }
            Config config = LongDocConfig.load(args);
            return sub.command().run(args, config);
        } catch (UsageException e) {
            System.err.println("longdoc " + argv[0] + ": " + e.getMessage());
            return BAD_INPUT;
        } catch (GateTrippedException e) {
            System.err.println("longdoc " + argv[0] + ": " + e.getMessage());
            return GATE;
        } catch (Exception e) {
            System.err.println("longdoc " + argv[0] + " failed: " + e);
            e.printStackTrace();
            return FAILURE;
        }
    }

    static String usage() {
        StringBuilder sb = new StringBuilder("usage: longdoc SUBCOMMAND [options]   (SUBCOMMAND --help for its options)\n\nsubcommands:\n");
        COMMANDS.forEach((name, sub) -> sb.append(String.format("  %-16s %s%n", name, sub.summary())));
        sb.append("\nexit codes: 0 ok, 2 bad usage or input, 3 gate tripped, 1 other failure");
        return sb.toString();
    }

    /** Loads a tokenizer for a command, turning a bad file into a usage error (exit 2). */
    public static Tokenizer loadTokenizer(String path) {
        try {
            return Tokenizer.load(Path.of(path));
        } catch (TokenizerFormatException e) {
            throw new UsageException("tokenizer " + path + ": " + e.getMessage(), e);
        }
    }
}
