package io.longdoc.engine.prompt;

import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.tokenizer.IntList;
import io.longdoc.engine.tokenizer.Tokenizer;

/**
 * How a model family wraps a system prompt and a user turn into input ids, ending with the
 * generation prompt (where the model's answer begins).
 */
public enum ChatFormat {
    /**
     * Index-1.9B: [0] + enc(system) + [3] + enc(user) + [4]; no leading <unk> without a system
     * prompt; no BOS. enc is the demo's {@code tokenizer.encode}: special strings of
     * tokenizer_config.json in the text (a document quoting {@code </s>} or {@code reserved_0})
     * become their ids, as documents do in the Spark job.
     */
    INDEX {
        @Override
        public int[] wrap(Tokenizer tok, String system, String user) {
            IntList ids = new IntList();
            if (system != null && !system.isEmpty()) {
                ids.add(SYSTEM_ID);
                tok.encodeInto(system, ids);
            }
            ids.add(USER_ID);
            tok.encodeInto(user, ids);
            ids.add(BOT_ID);
            return ids.toArray();
        }
    },
    /** LLaMA-2 / Mistral instruct: <s>[INST] <<SYS>>…<</SYS>> user [/INST] */
    LLAMA_INST {
        @Override
        public int[] wrap(Tokenizer tok, String system, String user) {
            String sys = system == null || system.isEmpty() ? "" : "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
            IntList ids = new IntList();
            ids.add(tok.bosId());
            tok.sentencePiece().encodeInto("[INST] " + sys + user.strip() + " [/INST]", ids);
            return ids.toArray();
        }
    },
    /** No chat markers: BOS (unless the family never uses one) and the text. */
    PLAIN {
        @Override
        public int[] wrap(Tokenizer tok, String system, String user) {
            String text = system == null || system.isEmpty() ? user : system + "\n\n" + user;
            return tok.encode(text, tok.addsBos(), false);
        }
    };

    public static final int SYSTEM_ID = 0, USER_ID = 3, BOT_ID = 4;

    public abstract int[] wrap(Tokenizer tok, String system, String user);

    /**
     * The ids before and after a document placed inside the user turn: {@code [0]} is everything up
     * to the document (chat markers, system prompt, the user text before it), {@code [1]} everything
     * after it (the rest of the user text and the generation prompt). The text after the document
     * is encoded as a continuation (no dummy-prefix space), so prefix + document ids + suffix is the
     * prompt, and truncating the document never touches the template.
     */
    public int[][] around(Tokenizer tok, String system, String before, String after) {
        boolean hasSystem = system != null && !system.isEmpty();
        IntList prefix = new IntList();
        IntList suffix = new IntList();
        switch (this) {
            case INDEX -> {
                if (hasSystem) {
                    prefix.add(SYSTEM_ID);
                    tok.sentencePiece().encodeInto(system, prefix);
                }
                prefix.add(USER_ID);
                tok.sentencePiece().encodeInto(before, prefix);
                tok.sentencePiece().encodeInto(after, suffix, false);
                suffix.add(BOT_ID);
            }
            case LLAMA_INST -> {
                String sys = hasSystem ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" : "";
                prefix.add(tok.bosId());
                tok.sentencePiece().encodeInto("[INST] " + sys + before, prefix);
                tok.sentencePiece().encodeInto(after + " [/INST]", suffix, false);
            }
            case PLAIN -> {
                if (tok.addsBos()) {
                    prefix.add(tok.bosId());
                }
                tok.sentencePiece().encodeInto(hasSystem ? system + "\n\n" + before : before, prefix);
                tok.sentencePiece().encodeInto(after, suffix, false);
            }
        }
        return new int[][] {prefix.toArray(), suffix.toArray()};
    }

    public static ChatFormat of(ModelConfig config) {
        return config.isIndex() ? INDEX : LLAMA_INST;
    }

    /** The wrapping for a template: none for the plain-* templates (for base models), else the model family's chat format. */
    public static ChatFormat forTemplate(PromptTemplate template, ModelConfig config) {
        return template.name().startsWith("plain") ? PLAIN : of(config);
    }
}
