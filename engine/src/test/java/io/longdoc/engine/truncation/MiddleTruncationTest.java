package io.longdoc.engine.truncation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.tokenizer.SentencePieceTokenizer;
import io.longdoc.engine.tokenizer.Shared;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class MiddleTruncationTest {
    private static int[] range(int n) {
        return IntStream.range(0, n).toArray();
    }

    @Test
    void budgetZeroDropsEverything() {
        MiddleTruncation.Result r = MiddleTruncation.document(range(5), 0, null);
        assertArrayEquals(new int[0], r.keptIds());
        assertTrue(r.truncated());
        assertEquals(0, r.kept());
        assertEquals(5, r.dropped());
    }

    @Test
    void budgetOneKeepsNothingOfALongerDocumentButAllOfOneToken() {
        assertArrayEquals(new int[0], MiddleTruncation.document(range(2), 1, null).keptIds());
        MiddleTruncation.Result one = MiddleTruncation.document(new int[] {7}, 1, null);
        assertFalse(one.truncated());
        assertArrayEquals(new int[] {7}, one.keptIds());
    }

    @Test
    void oddBudgetKeepsTwoFloorHalves() {
        MiddleTruncation.Result r = MiddleTruncation.document(range(10), 5, null);
        assertArrayEquals(new int[] {0, 1, 8, 9}, r.keptIds());
        assertEquals(4, r.kept());
        assertEquals(6, r.dropped());
    }

    @Test
    void exactlyTheBudgetIsKeptWhole() {
        MiddleTruncation.Result r = MiddleTruncation.document(range(8), 8, null);
        assertFalse(r.truncated());
        assertArrayEquals(range(8), r.keptIds());
        assertEquals(0, r.dropped());
    }

    @Test
    void oneOverTheBudgetLosesTheMiddle() {
        MiddleTruncation.Result r = MiddleTruncation.document(range(9), 8, null);
        assertTrue(r.truncated());
        assertArrayEquals(new int[] {0, 1, 2, 3, 5, 6, 7, 8}, r.keptIds());
        assertEquals(1, r.dropped());
    }

    @Test
    void emptyDocumentIsKept() {
        MiddleTruncation.Result r = MiddleTruncation.document(new int[0], 0, null);
        assertFalse(r.truncated());
        assertEquals(0, r.kept());
    }

    @Test
    void negativeBudgetIsAnError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MiddleTruncation.document(range(3), -1, null));
        assertTrue(e.getMessage().contains("negative"));
    }

    @Test
    void wholePromptReproducesOpenCompass() {
        // max_seq_len 10, max_out_len 3: max_prompt_len 7, half 3 -> ids[:3] + ids[-3:]
        MiddleTruncation.Result r = MiddleTruncation.wholePrompt(range(9), 10, 3);
        assertArrayEquals(new int[] {0, 1, 2, 6, 7, 8}, r.keptIds());
        // Longer than max_seq_len: left truncation to the last 10 first, then the middle cut.
        assertArrayEquals(new int[] {2, 3, 4, 9, 10, 11}, MiddleTruncation.wholePrompt(range(12), 10, 3).keptIds());
        // Within max_prompt_len: untouched.
        assertFalse(MiddleTruncation.wholePrompt(range(7), 10, 3).truncated());
        // half <= 0 disables the cut (but not the left truncation).
        assertArrayEquals(range(4), MiddleTruncation.wholePrompt(range(4), 5, 4).keptIds());
    }

    @Test
    void cutNeverSplitsAByteFallbackCharacter() {
        SentencePieceTokenizer tok = SentencePieceTokenizer.load(Shared.require("tokenizers/tok512/tokenizer.model"));
        // tok512 has no CJK pieces: each character below is three byte pieces.
        String doc = "长文档的中间部分会被删除，但是开头和结尾保留下来。".repeat(4);
        int[] ids = tok.encode(doc);
        for (int budget = 0; budget < 60; budget++) {
            MiddleTruncation.Result r = MiddleTruncation.document(ids, budget, tok::byteValue);
            String text = tok.decode(r.keptIds());
            assertFalse(text.contains("\uFFFD"), "budget " + budget + " broke a character: " + text);
            assertTrue(r.kept() <= 2 * (budget / 2) && r.kept() >= 2 * (budget / 2) - 4, "budget " + budget + " kept " + r.kept());
            assertEquals(ids.length, r.kept() + r.dropped());
        }
    }
}
