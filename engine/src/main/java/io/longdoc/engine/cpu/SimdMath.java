package io.longdoc.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** {@link VectorMath} on the Vector API (SIMD lanes of the machine's preferred width). */
final class SimdMath extends VectorMath {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final VectorMath SCALAR = VectorMath.scalar();

    @Override
    public String name() {
        return "simd-" + S.vectorBitSize();
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int lanes = S.length();
        if (n < 4 * lanes) {
            return SCALAR.dot(a, aOff, b, bOff, n); // a lane reduction costs more than it saves on short rows
        }
        // Four accumulators hide the FMA latency.
        FloatVector acc0 = FloatVector.zero(S), acc1 = FloatVector.zero(S), acc2 = FloatVector.zero(S), acc3 = FloatVector.zero(S);
        int i = 0;
        for (; i + 4 * lanes <= n; i += 4 * lanes) {
            acc0 = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc0);
            acc1 = FloatVector.fromArray(S, a, aOff + i + lanes).fma(FloatVector.fromArray(S, b, bOff + i + lanes), acc1);
            acc2 = FloatVector.fromArray(S, a, aOff + i + 2 * lanes).fma(FloatVector.fromArray(S, b, bOff + i + 2 * lanes), acc2);
            acc3 = FloatVector.fromArray(S, a, aOff + i + 3 * lanes).fma(FloatVector.fromArray(S, b, bOff + i + 3 * lanes), acc3);
        }
        for (; i + lanes <= n; i += lanes) {
            acc0 = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc0);
        }
        float s = acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += a[aOff + i] * b[bOff + i];
        }
        return s;
    }

    @Override
    public void dot4(float[] w, int wOff, float[] x0, float[] x1, float[] x2, float[] x3, int n, float[] out) {
        int lanes = S.length();
        if (n < 4 * lanes) {
            SCALAR.dot4(w, wOff, x0, x1, x2, x3, n, out);
            return;
        }
        FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S), a3 = FloatVector.zero(S);
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            FloatVector wv = FloatVector.fromArray(S, w, wOff + i);
            a0 = wv.fma(FloatVector.fromArray(S, x0, i), a0);
            a1 = wv.fma(FloatVector.fromArray(S, x1, i), a1);
            a2 = wv.fma(FloatVector.fromArray(S, x2, i), a2);
            a3 = wv.fma(FloatVector.fromArray(S, x3, i), a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD), s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD), s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float wi = w[wOff + i];
            s0 += wi * x0[i];
            s1 += wi * x1[i];
            s2 += wi * x2[i];
            s3 += wi * x3[i];
        }
        out[0] = s0;
        out[1] = s1;
        out[2] = s2;
        out[3] = s3;
    }

    @Override
    public void dot2x4(float[] w, int wOff0, int wOff1, float[] x0, float[] x1, float[] x2, float[] x3, int n, float[] out) {
        int lanes = S.length();
        if (n < 4 * lanes) {
            SCALAR.dot2x4(w, wOff0, wOff1, x0, x1, x2, x3, n, out);
            return;
        }
        // Eight accumulators (2 rows × 4 vectors) and six loads per eight FMAs: fits the 16 vector registers.
        FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S), a3 = FloatVector.zero(S);
        FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S), b2 = FloatVector.zero(S), b3 = FloatVector.zero(S);
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            FloatVector w0 = FloatVector.fromArray(S, w, wOff0 + i), w1 = FloatVector.fromArray(S, w, wOff1 + i);
            FloatVector v = FloatVector.fromArray(S, x0, i);
            a0 = w0.fma(v, a0);
            b0 = w1.fma(v, b0);
            v = FloatVector.fromArray(S, x1, i);
            a1 = w0.fma(v, a1);
            b1 = w1.fma(v, b1);
            v = FloatVector.fromArray(S, x2, i);
            a2 = w0.fma(v, a2);
            b2 = w1.fma(v, b2);
            v = FloatVector.fromArray(S, x3, i);
            a3 = w0.fma(v, a3);
            b3 = w1.fma(v, b3);
        }
        float[] sums = {a0.reduceLanes(VectorOperators.ADD), a1.reduceLanes(VectorOperators.ADD), a2.reduceLanes(VectorOperators.ADD),
            a3.reduceLanes(VectorOperators.ADD), b0.reduceLanes(VectorOperators.ADD), b1.reduceLanes(VectorOperators.ADD),
            b2.reduceLanes(VectorOperators.ADD), b3.reduceLanes(VectorOperators.ADD)};
        for (; i < n; i++) {
            float u = w[wOff0 + i], t = w[wOff1 + i];
            sums[0] += u * x0[i];
            sums[1] += u * x1[i];
            sums[2] += u * x2[i];
            sums[3] += u * x3[i];
            sums[4] += t * x0[i];
            sums[5] += t * x1[i];
            sums[6] += t * x2[i];
            sums[7] += t * x3[i];
        }
        System.arraycopy(sums, 0, out, 0, 8);
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        if (n < 2 * S.length()) {
            SCALAR.axpy(alpha, x, xOff, y, yOff, n);
            return;
        }
        int lanes = S.length();
        int i = 0;
        FloatVector va = FloatVector.broadcast(S, alpha);
        for (; i + lanes <= n; i += lanes) {
            FloatVector.fromArray(S, x, xOff + i).fma(va, FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }
}
