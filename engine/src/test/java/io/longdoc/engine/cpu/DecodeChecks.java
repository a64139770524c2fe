package io.longdoc.engine.cpu;

import io.longdoc.engine.runtime.Chunk;
import java.util.Arrays;
import java.util.List;

/** Decode steps measured against a prefill's logits, shared by the attention tests. */
final class DecodeChecks {
    private DecodeChecks() {
    }

    /** n ids, (i · step + offset) mod vocab: varied, and the same every run. */
    static int[] tokens(int n, int step, int offset, int vocab) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (i * step + offset) % vocab;
        }
        return ids;
    }

    /** Logits at every position of one prefill of all the tokens.   (tokens, V) */
    static float[][] prefillLogits(CpuBackend b, int[] table, int[] tokens) {
        int[] all = new int[tokens.length];
        Arrays.setAll(all, i -> i);
        return b.forward(List.of(new Chunk(table, 0, tokens, all, tokens.length)));
    }

    /**
     * The decoder prefills the first {@code prompt} tokens, then decodes the rest one step at a time;
     * returns the largest difference from {@code want} at those positions, relative to each
     * position's largest logit.
     */
    static double worstDecodeError(CpuBackend decoder, int[] table, int[] tokens, int prompt, float[][] want) {
        decoder.forward(List.of(new Chunk(table, 0, Arrays.copyOf(tokens, prompt), new int[] {prompt - 1}, prompt)));
        double worst = 0;
        for (int pos = prompt; pos < tokens.length; pos++) {
            float[] got = decoder.forward(List.of(new Chunk(table, pos, new int[] {tokens[pos]}, new int[] {0}, pos + 1)))[0];
            float largest = 0;
            for (float v : want[pos]) {
                largest = Math.max(largest, Math.abs(v));
            }
            for (int v = 0; v < got.length; v++) {
                worst = Math.max(worst, Math.abs(got[v] - want[pos][v]) / largest);
            }
        }
        return worst;
    }
}
