package io.longdoc.engine.model;

/**
 * Rotary position embedding frequencies, as Hugging Face computes them: the plain base, linear
 * scaling (positions ÷ factor), dynamic NTK (a larger base once the sequence outgrows
 * max_position_embeddings) and llama3's banded scaling.
 */
public final class Rope {
    private final ModelConfig c;
    private final double[] baseInvFreq;

    public Rope(ModelConfig c) {
        this.c = c;
        this.baseInvFreq = invFreq(c.ropeBase());
    }

    private double[] invFreq(double base) {
        int half = c.headDim() / 2;
        double[] inv = new double[half];
        for (int i = 0; i < half; i++) {
            inv[i] = 1.0 / Math.pow(base, (2.0 * i) / c.headDim());
        }
        if (c.ropeScaling().type().equals("llama3")) {
            ModelConfig.RopeScaling s = c.ropeScaling();
            double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
            double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
            for (int i = 0; i < half; i++) {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowWavelen) {
                    inv[i] = inv[i] / s.factor();
                } else if (wavelen >= highWavelen) {
                    double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                    inv[i] = (1 - smooth) * inv[i] / s.factor() + smooth * inv[i];
                }
            }
        }
        return inv;
    }

    /**
     * Inverse frequencies in force for a forward pass over a sequence of {@code seqLen} tokens.
     * Only dynamic NTK depends on it (HF recomputes the base from the current length).
     */
    public double[] invFreq(int seqLen) {
        ModelConfig.RopeScaling s = c.ropeScaling();
        if (s.type().equals("dynamic") && seqLen > c.maxPositions()) {
            int d = c.headDim();
            double base = c.ropeBase() * Math.pow(s.factor() * seqLen / c.maxPositions() - (s.factor() - 1), d / (d - 2.0));
            return invFreq(base);
        }
        return baseInvFreq;
    }

    /** The position the angle is computed from (linear scaling divides it). */
    public double scaledPosition(int pos) {
        return c.ropeScaling().type().equals("linear") ? pos / c.ropeScaling().factor() : pos;
    }

    /** cos and sin of each rotary angle for a token at {@code pos} in a sequence of {@code seqLen} tokens. */
    public void angles(int pos, int seqLen, float[] cos, float[] sin) {
        double[] inv = invFreq(seqLen);
        double p = scaledPosition(pos);
        for (int i = 0; i < inv.length; i++) {
            double angle = p * inv[i];
            cos[i] = (float) Math.cos(angle);
            sin[i] = (float) Math.sin(angle);
        }
    }

    /**
     * Rotates {@code v[off, off + headDim)} in place, rotate_half layout: dimension i pairs with
     * i + headDim/2.
     */
    public static void rotate(float[] v, int off, int headDim, float[] cos, float[] sin) {
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            float x0 = v[off + i], x1 = v[off + i + half];
            v[off + i] = x0 * cos[i] - x1 * sin[i];
            v[off + i + half] = x1 * cos[i] + x0 * sin[i];
        }
    }
}
