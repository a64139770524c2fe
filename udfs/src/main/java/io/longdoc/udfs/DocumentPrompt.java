package io.longdoc.udfs;

import io.longdoc.engine.prompt.ChatFormat;
import io.longdoc.engine.prompt.PromptTemplate;
import io.longdoc.engine.tokenizer.Tokenizer;
import io.longdoc.engine.truncation.MiddleTruncation;

/**
 * A document inside a prompt template: the template's ids around it, the document's middle cut
 * to what the context leaves (context − max new tokens − template tokens).
 */
public final class DocumentPrompt {
    private final Tokenizer tok;
    private final int[][] around;
    private final int budget;

    public DocumentPrompt(Tokenizer tok, PromptTemplate template, ChatFormat format, int contextTokens, int maxNewTokens) {
        this.tok = tok;
        this.around = format.around(tok, template.system(), template.before(), template.after());
        this.budget = contextTokens - maxNewTokens - around[0].length - around[1].length;
        if (budget < 0) {
            throw new IllegalArgumentException("no room for the document: context " + contextTokens + " − max new tokens " + maxNewTokens
                    + " − template " + (around[0].length + around[1].length) + " < 0");
        }
    }

    public int templateTokens() {
        return around[0].length + around[1].length;
    }

    public int budget() {
        return budget;
    }

    /** The document's ids cut to the budget. */
    public MiddleTruncation.Result cut(int[] documentIds) {
        return MiddleTruncation.document(documentIds, budget, tok.sentencePiece()::byteValue);
    }

    /** prefix + kept document ids + suffix. */
    public int[] prompt(MiddleTruncation.Result cut) {
        int[] prompt = new int[around[0].length + cut.kept() + around[1].length];
        System.arraycopy(around[0], 0, prompt, 0, around[0].length);
        System.arraycopy(cut.keptIds(), 0, prompt, around[0].length, cut.kept());
        System.arraycopy(around[1], 0, prompt, around[0].length + cut.kept(), around[1].length);
        return prompt;
    }
}
