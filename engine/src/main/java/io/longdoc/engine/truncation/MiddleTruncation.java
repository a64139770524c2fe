package io.longdoc.engine.truncation;

import java.util.Arrays;
import java.util.function.IntUnaryOperator;

/**
 * Middle truncation, as OpenCompass's {@code mid} mode in the Index-1.9B long-context evaluation:
 * a sequence longer than its budget B keeps its first ⌊B/2⌋ and last ⌊B/2⌋ tokens.
 *
 * <p>{@link #document} applies it to the document alone, so the instruction, the chat markers and
 * the generation prompt around it stay whole (B = context − max_new_tokens − template tokens).
 * {@link #wholePrompt} reproduces OpenCompass exactly, on the templated prompt ids.
 */
public final class MiddleTruncation {
    private MiddleTruncation() {
    }

    /** What truncation kept of a sequence. */
    public record Result(int[] keptIds, boolean truncated, int kept, int dropped) {
    }

    /**
     * Keeps the first and last ⌊budget/2⌋ ids of {@code docIds} when it has more than
     * {@code budget}; otherwise keeps everything.
     *
     * @param byteValue for tokenizers with byte fallback: the byte a byte-piece id stands for, or
     *     -1 for any other id. The cut is moved off a character's UTF-8 bytes so that decoding the
     *     kept ids never yields a broken character (a few more ids may be dropped for that). Pass
     *     {@code null} for a cut that is exactly token-level.
     */
    public static Result document(int[] docIds, int budget, IntUnaryOperator byteValue) {
        if (budget < 0) {
            throw new IllegalArgumentException("truncation budget is negative (" + budget
                    + "): the context is smaller than max_new_tokens plus the template");
        }
        int n = docIds.length;
        if (n <= budget) {
            return new Result(docIds, false, n, 0);
        }
        int half = budget / 2;
        int headEnd = half;
        int tailStart = n - half;
        if (byteValue != null) {
            headEnd = headEndOnCharBoundary(docIds, headEnd, byteValue);
            tailStart = tailStartOnCharBoundary(docIds, tailStart, n, byteValue);
        }
        int[] kept = new int[headEnd + (n - tailStart)];
        System.arraycopy(docIds, 0, kept, 0, headEnd);
        System.arraycopy(docIds, tailStart, kept, headEnd, n - tailStart);
        return new Result(kept, true, kept.length, n - kept.length);
    }

    /**
     * OpenCompass {@code HuggingFacewithChatTemplate} with {@code mode='mid'} (commit 59586a8):
     * the tokenizer first keeps the last {@code maxSeqLen} ids (left truncation), then when more
     * than {@code maxSeqLen − maxOutLen} remain, {@code ids[:half] + ids[-half:]} with
     * {@code half = (maxSeqLen − maxOutLen) // 2}.
     */
    public static Result wholePrompt(int[] promptIds, int maxSeqLen, int maxOutLen) {
        int[] ids = promptIds;
        if (ids.length > maxSeqLen) {
            ids = Arrays.copyOfRange(ids, ids.length - maxSeqLen, ids.length);
        }
        int maxPromptLen = maxSeqLen - maxOutLen;
        int half = Math.floorDiv(maxPromptLen, 2);
        if (half > 0 && ids.length > maxPromptLen) {
            int[] kept = new int[2 * half];
            System.arraycopy(ids, 0, kept, 0, half);
            System.arraycopy(ids, ids.length - half, kept, half, half);
            ids = kept;
        }
        boolean truncated = ids.length < promptIds.length;
        return new Result(ids, truncated, ids.length, promptIds.length - ids.length);
    }

    /** Moves the head's end back before an incomplete UTF-8 character spelled in byte pieces. */
    private static int headEndOnCharBoundary(int[] ids, int headEnd, IntUnaryOperator byteValue) {
        // Find the last lead byte among the trailing byte pieces, at most 4 back.
        for (int i = headEnd - 1; i >= 0 && i >= headEnd - 4; i--) {
            int b = byteValue.applyAsInt(ids[i]);
            if (b < 0) {
                return headEnd;
            }
            if ((b & 0xC0) != 0x80) {
                int need = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
                return headEnd - i >= need ? headEnd : i;
            }
        }
        return headEnd;
    }

    /** Moves the tail's start past UTF-8 continuation bytes left over from a cut character. */
    private static int tailStartOnCharBoundary(int[] ids, int tailStart, int n, IntUnaryOperator byteValue) {
        int i = tailStart;
        while (i < n && i < tailStart + 3) {
            int b = byteValue.applyAsInt(ids[i]);
            if (b < 0 || (b & 0xC0) != 0x80) {
                break;
            }
            i++;
        }
        return i;
    }
}
