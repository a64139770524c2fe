package io.longdoc.engine.prompt;

import java.util.Map;

/**
 * A task prompt around a document: a system prompt and the user turn's text with a
 * {@code {document}} placeholder, plus the generation defaults that go with it.
 */
public record PromptTemplate(String name, String system, String user, int maxNewTokens, float repetitionPenalty) {
    public static final String PLACEHOLDER = "{document}";

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
                    "Summarize the following document.\n\n" + PLACEHOLDER + "\n\nSummary:", 256, 1.1f));

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

    /** The user turn for one document; the demo normalises line ends as Python's text mode does. */
    public String userText(String document) {
        String doc = document.replace("\r\n", "\n").replace('\r', '\n');
        return user.replace(PLACEHOLDER, doc);
    }
}
