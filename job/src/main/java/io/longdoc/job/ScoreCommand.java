package io.longdoc.job;

import com.typesafe.config.Config;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import java.io.PrintStream;
import java.io.BufferedOutputStream;
import java.nio.charset.StandardCharsets;

/** {@code longdoc score}: teacher-forced logits at chosen positions, as one JSON object. */
public final class ScoreCommand {
    private ScoreCommand() {
    }

    static Args args() {
        return new Args("score", "--model DIR --ids 1,2,3|@FILE --positions 0,5,99")
                .option("model", "DIR", "Hugging Face model directory")
                .option("ids", "LIST", "input ids, comma-separated or @FILE")
                .option("positions", "LIST", "positions whose next-token logits to print")
                .option("backend", "B", "cpu | cuda | auto");
    }

    static int run(Args args, Config config) throws Exception {
        try (Engine engine = EngineOptions.load(args, config)) {
            int[] ids = GenerateCommand.parseIds(args.require("ids"), engine.config().vocabSize());
            String[] parts = args.require("positions").split(",");
            int[] positions = new int[parts.length];
            java.util.Set<Integer> given = new java.util.HashSet<>();
            for (int i = 0; i < parts.length; i++) {
                try {
                    positions[i] = Integer.parseInt(parts[i].trim());
                } catch (NumberFormatException e) {
                    throw new UsageException("--positions: '" + parts[i] + "' is not a position");
                }
                if (positions[i] < 0 || positions[i] >= ids.length) {
                    throw new UsageException("--positions: " + positions[i] + " is outside the " + ids.length + " ids");
                }
                if (!given.add(positions[i])) {
                    throw new UsageException("--positions: " + positions[i] + " is given twice (a JSON object's keys are distinct)");
                }
            }
            float[][] logits = engine.score(ids, positions);
            PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, StandardCharsets.UTF_8);
            out.print('{');
            long notFinite = 0;
            for (int i = 0; i < positions.length; i++) {
                out.print((i > 0 ? "," : "") + "\"" + positions[i] + "\":[");
                for (int j = 0; j < logits[i].length; j++) {
                    if (j > 0) {
                        out.print(',');
                    }
                    // JSON has no NaN or infinity: null, so that every JSON reader takes the output.
                    if (Float.isFinite(logits[i][j])) {
                        out.print(logits[i][j]);
                    } else {
                        out.print("null");
                        notFinite++;
                    }
                }
                out.print(']');
            }
            out.println('}');
            out.flush();
            if (notFinite > 0) {
                System.err.println("longdoc score: " + notFinite + " logits were not finite numbers (printed as null): are the weights corrupt?");
            }
        }
        return 0;
    }
}
