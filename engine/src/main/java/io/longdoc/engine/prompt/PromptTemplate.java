package io.longdoc.engine.prompt;

import java.util.Map;

/**
 * A task prompt around a document: a system prompt and the user turn's text with a
 * {@code {document}} placeholder, plus the generation defaults that go with it.
 */
public record PromptTemplate(String name, String system, String user, int maxNewTokens, float repetitionPenalty)
        implements java.io.Serializable {
    public static final String PLACEHOLDER = "{document}";
    /** Where an extract template shows the JSON schema. */
    public static final String SCHEMA_PLACEHOLDER = "{schema}";

    /** The system prompt of bilibili/Index-1.9B demo/cli_long_text_demo.py, character for character. */
    static final String INDEX_SYSTEM = "你是由哔哩哔哩人工智能平台部自主研发的大语言模型，名为“Index”。你能够根据用户传入的信息，帮助用户完成指定的任务，并生成恰当的、符合要求的回复。";

    /** Built-in templates: index-zh is the seed's long-text demo exactly (greedy, repetition penalty 1.1, 500 new tokens). */
    public static final Map<String, PromptTemplate> BUILT_IN = Map.of(
            "index-zh", new PromptTemplate("index-zh", INDEX_SYSTEM,
                    "请用中文总结以下内容：\n\n\n\n\n\n" + PLACEHOLDER + "\n\n\n\n\n\n请用中文总结以上内容：", 500, 1.1f),
            "index-en", new PromptTemplate("index-en",
                    "You are Index, a large language model developed by bilibili. Help the user complete the task with an appropriate answer.",
                    "Summarize the following content in English:\n\n\n\n\n\n" + PLACEHOLDER + "\n\n\n\n\n\nSummarize the above content in English:", 500, 1.1f),
            "plain-en", new PromptTemplate("plain-en", "",
                    "Summarize the following document.\n\n" + PLACEHOLDER + "\n\nSummary:", 256, 1.1f),
            // Extraction: the answer is constrained to the schema anyway; the prompt tells the model what to look for.
            // No repetition penalty: JSON repeats its quotes and commas by design.
            "extract-en", new PromptTemplate("extract-en",
                    "You extract structured data from documents. Answer with one JSON object and nothing else.",
                    "Extract the fields described by this JSON Schema from the document below.\n\nSchema:\n" + SCHEMA_PLACEHOLDER
                            + "\n\nDocument:\n" + PLACEHOLDER + "\n\nAnswer with the JSON object.", 256, 1.0f),
            "plain-extract", new PromptTemplate("plain-extract", "",
                    "Document:\n" + PLACEHOLDER + "\n\nThe fields of this JSON Schema, extracted from the document above:\n"
                            + SCHEMA_PLACEHOLDER + "\n\nJSON:", 256, 1.0f));

    public PromptTemplate {
        if (!user.contains(PLACEHOLDER)) {
            throw new IllegalArgumentException("template " + name + " has no " + PLACEHOLDER + " placeholder");
        }
    }

    public static PromptTemplate builtIn(String name) {
        PromptTemplate t = BUILT_IN.get(name);
        if (t == null) {
            throw new IllegalArgumentException("unknown template '" + name + "' (built-in: " + String.join(", ", BUILT_IN.keySet()) + ")");
        }
        return t;
    }

    /** This template with the schema (compact JSON) in place of {schema}; the hash then covers the schema too. */
    public PromptTemplate withSchema(String schemaJson) {
        return new PromptTemplate(name, system.replace(SCHEMA_PLACEHOLDER, schemaJson), user.replace(SCHEMA_PLACEHOLDER, schemaJson),
                maxNewTokens, repetitionPenalty);
    }

    /** The user text before the document placeholder. */
    public String before() {
        return user.substring(0, user.indexOf(PLACEHOLDER));
    }

    /** The user text after the document placeholder. */
    public String after() {
        return user.substring(user.indexOf(PLACEHOLDER) + PLACEHOLDER.length());
    }

    /**
     * A user template: a text file with one {document} placeholder. Optional first lines, in any
     * order: "system: ..." sets the system prompt; "format: plain" leaves the prompt unwrapped
     * (for base models), "format: chat" (the default) wraps it in the model family's chat format.
     * The file's name decides nothing.
     */
    public static PromptTemplate fromFile(java.nio.file.Path file) throws java.io.IOException {
        String text = java.nio.file.Files.readString(file, java.nio.charset.StandardCharsets.UTF_8);
        String system = "";
        boolean plain = false;
        while (text.startsWith("system:") || text.startsWith("format:")) {
            int nl = text.indexOf('\n');
            String line = nl < 0 ? text : text.substring(0, nl);
            String value = line.substring(7).strip();
            if (line.startsWith("system:")) {
                system = value;
            } else if (value.equals("plain") || value.equals("chat")) {
                plain = value.equals("plain");
            } else {
                throw new IllegalArgumentException(file + ": 'format: " + value + "' is not a format (plain or chat)");
            }
            text = nl < 0 ? "" : text.substring(nl + 1);
        }
        int first = text.indexOf(PLACEHOLDER);
        if (first < 0 || text.indexOf(PLACEHOLDER, first + 1) >= 0) {
            throw new IllegalArgumentException(file + ": a template needs exactly one " + PLACEHOLDER + " placeholder");
        }
        // ChatFormat.forTemplate leaves templates named plain* unwrapped, as the built-in plain-* ones.
        String name = (plain ? "plain-file:" : "file:") + file.getFileName();
        return new PromptTemplate(name, system, text, 256, 1.0f);
    }

    /** A short stable hash of what the model sees around documents, for output rows and resume checks. */
    public String hash() {
        return sha(name + "\u0000" + system + "\u0000" + user);
    }

    /** The first 8 bytes of the SHA-256 of a text, in hex: a short stable hash for fingerprints. */
    public static String sha(String text) {
        try {
            var md = java.security.MessageDigest.getInstance("SHA-256");
            byte[] d = md.digest(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(d, 0, 8);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The user turn for one document; the demo normalises line ends as Python's text mode does. */
    public String userText(String document) {
        String doc = document.replace("\r\n", "\n").replace('\r', '\n');
        return user.replace(PLACEHOLDER, doc);
    }
}
