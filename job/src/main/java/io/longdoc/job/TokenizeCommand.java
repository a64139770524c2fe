package io.longdoc.job;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import io.longdoc.engine.tokenizer.IntList;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.job.cli.Args;
import io.longdoc.job.cli.UsageException;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * {@code longdoc tokenize}: one output line per JSONL input line, in order, streaming (constant
 * memory however large the file). Runs in a plain JVM.
 */
public final class TokenizeCommand {
    private TokenizeCommand() {
    }

    static Args args() {
        return new Args("tokenize", "--tokenizer PATH --jsonl FILE [--field text] [--add-bos] [--count]")
                .option("tokenizer", "PATH", "tokenizer.model file or model directory (its tokenizer_config.json special tokens are honoured)")
                .option("jsonl", "FILE", "input, one JSON object per line ('-' for standard input)")
                .option("field", "NAME", "field holding the text (default: text)")
                .flag("add-bos", "prepend the BOS id")
                .flag("add-eos", "append the EOS id")
                .flag("count", "print only the number of ids per line");
    }

    static int run(Args args, Config config) throws IOException {
        Tokenizer tokenizer = Main.loadTokenizer(args.require("tokenizer"));
        String file = args.require("jsonl");
        String field = args.get("field", "text");
        boolean bos = args.has("add-bos"), eos = args.has("add-eos"), countOnly = args.has("count");
        ObjectMapper json = new ObjectMapper();
        BufferedReader in;
        try {
            in = file.equals("-")
                    ? new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 16)
                    : Files.newBufferedReader(Path.of(file), StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new UsageException("--jsonl " + file + ": no such file");
        }
        Writer out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
        IntList ids = new IntList();
        StringBuilder line = new StringBuilder();
        long lineNo = 0;
        try (in) {
            String raw;
            while ((raw = in.readLine()) != null) {
                lineNo++;
                JsonNode node;
                try {
                    node = json.readTree(raw);
                } catch (JsonProcessingException e) {
                    throw new UsageException(file + " line " + lineNo + ": not valid JSON (" + e.getOriginalMessage() + ")");
                }
                if (node == null || !node.isObject()) {
                    throw new UsageException(file + " line " + lineNo + ": expected a JSON object");
                }
                JsonNode text = node.get(field);
                if (text == null) {
                    throw new UsageException(file + " line " + lineNo + ": no field '" + field + "' (use --field)");
                }
                line.setLength(0);
                if (text.isNull()) {
                    line.append(countOnly ? "null" : "{\"ids\":null}");
                } else if (!text.isTextual()) {
                    throw new UsageException(file + " line " + lineNo + ": field '" + field + "' is " + text.getNodeType() + ", not a string");
                } else {
                    ids.clear();
                    if (bos) {
                        ids.add(tokenizer.bosId());
                    }
                    tokenizer.encodeInto(text.asText(), ids);
                    if (eos) {
                        ids.add(tokenizer.eosId());
                    }
                    if (countOnly) {
                        line.append(ids.size());
                    } else {
                        line.append("{\"ids\":[");
                        for (int i = 0; i < ids.size(); i++) {
                            if (i > 0) {
                                line.append(',');
                            }
                            line.append(ids.get(i));
                        }
                        line.append("]}");
                    }
                }
                line.append('\n');
                out.append(line);
            }
        } finally {
            out.flush();
        }
        return 0;
    }
}
