package io.longdoc.engine.cpu;

import io.longdoc.engine.model.DType;
import java.nio.ByteBuffer;

/**
 * The inner loops of the CPU backend. {@link #get()} picks the Vector API version when the JVM
 * has the {@code jdk.incubator.vector} module (run with {@code --add-modules jdk.incubator.vector}),
 * else the scalar one; tests run both and compare.
 */
public abstract class VectorMath {
    private static final VectorMath BEST = pick();

    public static VectorMath get() {
        return BEST;
    }

    public static VectorMath scalar() {
        return new ScalarMath();
    }

    /**
     * The SIMD kernels with mapped F32 rows copied for the panel kernels, as on a JVM where they
     * cannot be read in place: for tests of that path.
     */
    static VectorMath simdCopyingPanelRows() throws ReflectiveOperationException {
        return (VectorMath) Class.forName("io.longdoc.engine.cpu.SimdMath").getDeclaredConstructor(boolean.class).newInstance(false);
    }

    public static boolean simdAvailable() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    private static VectorMath pick() {
        if (simdAvailable() && !Boolean.getBoolean("longdoc.cpu.scalar")) {
            try {
                return (VectorMath) Class.forName("io.longdoc.engine.cpu.SimdMath").getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | LinkageError e) {
                return new ScalarMath();
            }
        }
        return new ScalarMath();
    }

    public abstract String name();

    /** Σ a[aOff + i] · b[bOff + i] for i in [0, n). */
    public abstract float dot(float[] a, int aOff, float[] b, int bOff, int n);

    /** out[k] = Σ w[wOff + i] · xk[i] for the four vectors x0..x3, i in [0, n). */
    public abstract void dot4(float[] w, int wOff, float[] x0, float[] x1, float[] x2, float[] x3, int n, float[] out);

    /**
     * Two weight rows against four vectors: out[2k + j] = Σ w[wOffJ + i] · xk[i] for rows j = 0, 1
     * (at wOff0, wOff1) and k = 0..3. Each load of x feeds two rows, each load of w four vectors.
     */
    public abstract void dot2x4(float[] w, int wOff0, int wOff1, float[] x0, float[] x1, float[] x2, float[] x3, int n, float[] out);

    /** Tokens in one panel of {@link #rowsTimesPanel}: two SIMD vectors' worth (16 at the default 256 bits, 32 at 512). */
    public abstract int panelWidth();

    /** Rows callers hand {@link #rowsTimesPanel} together where they can: a whole number of its kernels' groups. */
    public abstract int panelRows();

    /**
     * Weight rows against a panel of tokens stored transposed, xT: (cols, width):
     * out[r · width + t] = Σ_j w[wOff + r · cols + j] · xT[j · width + t] for r in [0, rows), t in [0, width).
     * out: (rows, width). The width is {@link #panelWidth()}, or half of it for a batch's last tokens.
     * Each weight value is broadcast to a whole panel of tokens, so a load of xT serves several rows
     * and no lane reductions are needed.
     */
    public abstract void rowsTimesPanel(float[] w, int wOff, int rows, int cols, float[] xT, int width, float[] out);

    /**
     * {@link #rowsTimesPanel(float[], int, int, int, float[], int, float[])} with the weight rows read
     * in place: rows·cols FP32 values in {@code bytes} from byte {@code byteOff} (little-endian), the
     * rows of a mapped F32 weight. Callers use it where {@link #readsPanelRowsInPlace()} says it is
     * fast, and copy the rows into an array for the array kernel elsewhere.
     */
    public abstract void rowsTimesPanel(ByteBuffer bytes, int byteOff, int rows, int cols, float[] xT, int width, float[] out);

    /**
     * {@link #rowsTimesPanel(ByteBuffer, int, int, int, float[], int, float[])} for BF16 rows:
     * rows·cols BF16 values from byte {@code byteOff}, each widened as it is read; whole panels
     * ({@link #panelWidth()} tokens) and an even number of columns. Callers use it where
     * {@link #readsPanelRowsInPlace()} says so.
     */
    public abstract void rowsTimesPanelBf16(ByteBuffer bytes, int byteOff, int rows, int cols, float[] xT, int width, float[] out);

    /** Whether {@link #rowsTimesPanel(ByteBuffer, int, int, int, float[], int, float[])} is faster than copying the rows first. */
    public boolean readsPanelRowsInPlace() {
        return false;
    }

    /**
     * Whether {@link #dotF32Rows} reads a buffer at full speed. When not (the Vector API of Java 20+
     * has no ByteBuffer loads), callers copy rows into arrays and use the array kernels.
     */
    public boolean readsBuffersFast() {
        return true;
    }

    /**
     * out[outOff + r] = Σ w_r[i] · x[i] for i in [0, n), r in [0, rows), where row w_r is n FP32
     * values in {@code bytes} from byte {@code byteOff + r · rowBytes}: rows of a mapped F32 weight
     * read in place, with no copy. The buffer must be in little-endian order (as
     * {@code Tensor.bytes()} is). Many rows per call: a small model's rows are so short that a call
     * per row cost as much as its arithmetic.
     */
    public abstract void dotF32Rows(ByteBuffer bytes, int byteOff, int rowBytes, int rows, float[] x, int n, float[] out, int outOff);

    /** x[0, n) in the order {@link #dotBf16} and {@link #dotF16} take it (a new array, or x itself when the order is the natural one). */
    public abstract float[] pairOrder(float[] x, int n);

    /**
     * Σ w[i] · x[i] for i in [0, n), where w is n BF16 values in {@code bytes} from byte
     * {@code byteOff} (little-endian): a row of a mapped BF16 weight, widened to FP32 as it is read.
     * x is given as {@link #pairOrder} arranged it.
     */
    public abstract float dotBf16(ByteBuffer bytes, int byteOff, float[] xOrdered, int n);

    /** Elements in one run of {@link #pairOrder} (1 where its order is the natural one). */
    public abstract int pairRun();

    /** dst[i] = the BF16 value at byte byteOff + 2i of {@code bytes} (little-endian), as FP32, for i in [0, n). */
    public void bf16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n) {
        bf16ToFloats(bytes, byteOff, dst, n, false);
    }

    /**
     * {@link #bf16ToFloats(ByteBuffer, int, float[], int)}; with {@code inPairOrder}, dst holds the
     * values in {@link #pairOrder}'s order, run after run (n a multiple of {@link #pairRun()}), which
     * widens with no lane moves.
     */
    public abstract void bf16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n, boolean inPairOrder);

    /** {@link #dotBf16} for IEEE half-precision (F16) rows: subnormals, infinities and NaN widened exactly. */
    public abstract float dotF16(ByteBuffer bytes, int byteOff, float[] xOrdered, int n);

    /** {@link #bf16ToFloats(ByteBuffer, int, float[], int)} for IEEE half-precision (F16) values. */
    public void f16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n) {
        f16ToFloats(bytes, byteOff, dst, n, false);
    }

    /** {@link #bf16ToFloats(ByteBuffer, int, float[], int, boolean)} for IEEE half-precision (F16) values. */
    public abstract void f16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n, boolean inPairOrder);

    /** gate[i] = silu(gate[i]) · up[i] = gate[i] / (1 + e^−gate[i]) · up[i] for i in [0, n). */
    public abstract void swiglu(float[] gate, float[] up, int n);

    /** y[yOff + i] += alpha · x[xOff + i] for i in [0, n). */
    public abstract void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n);

    /**
     * Attention scores against keys stored transposed (one row per dimension, one column per
     * position): out[outOff + o] = Σ_d q[qOff + d] · kT[kOff + d · stride + o] for o in [0, n), d in [0, dims).
     * Each step over d is a run of consecutive positions, so it fills whole SIMD lanes even when the
     * head dimension is tiny.
     */
    public abstract void dotColumns(float[] q, int qOff, float[] kT, int kOff, int stride, int dims, float[] out, int outOff, int n);

    /** out[outOff + d] += Σ_o p[pOff + o] · v[vOff + o · stride + d] for o in [0, n), d in [0, dims): value rows weighted by p. */
    public abstract void addWeightedRows(float[] p, int pOff, int n, float[] v, int vOff, int stride, int dims, float[] out, int outOff);

    /**
     * {@link #dotColumns} for four queries at once, which share each load of the keys:
     * out[outOff + t · outStride + o] = Σ_d qt[qOff + d] · kT[kOff + d · stride + o] for t in [0, 4).
     */
    public abstract void dotColumns4(float[] q0, float[] q1, float[] q2, float[] q3, int qOff, float[] kT, int kOff, int stride, int dims,
            float[] out, int outOff, int outStride, int n);

    /**
     * {@link #addWeightedRows} for four queries at once, which share each load of the values:
     * outt[outOff + d] += Σ_o p[pOff + t · pStride + o] · v[vOff + o · stride + d] for t in [0, 4).
     */
    public abstract void addWeightedRows4(float[] p, int pOff, int pStride, int n, float[] v, int vOff, int stride, int dims,
            float[] out0, float[] out1, float[] out2, float[] out3, int outOff);

    /**
     * Whether {@link #dotColumns8} and {@link #addWeightedRows8} are faster than two calls of the
     * four-query kernels: where sixteen accumulators fit in the vector registers (AVX-512's 32 even
     * at 256 bits, not AVX2's 16).
     */
    public boolean sharesLoadsAcrossEightQueries() {
        return false;
    }

    /**
     * {@link #dotColumns} for the eight queries q[first + t], t in [0, 8), at once:
     * out[outOff + t · outStride + o] = Σ_d q[first + t][qOff + d] · kT[kOff + d · stride + o].
     * This version is the obvious one, a query at a time.
     */
    public void dotColumns8(float[][] q, int first, int qOff, float[] kT, int kOff, int stride, int dims,
            float[] out, int outOff, int outStride, int n) {
        for (int t = 0; t < 8; t++) {
            dotColumns(q[first + t], qOff, kT, kOff, stride, dims, out, outOff + t * outStride, n);
        }
    }

    /**
     * {@link #addWeightedRows} for the eight outputs out[first + t], t in [0, 8), at once:
     * out[first + t][outOff + d] += Σ_o p[pOff + t · pStride + o] · v[vOff + o · stride + d].
     * This version is the obvious one, a query at a time.
     */
    public void addWeightedRows8(float[] p, int pOff, int pStride, int n, float[] v, int vOff, int stride, int dims,
            float[][] out, int first, int outOff) {
        for (int t = 0; t < 8; t++) {
            addWeightedRows(p, pOff + t * pStride, n, v, vOff, stride, dims, out[first + t], outOff);
        }
    }

    /**
     * One KV block's scores for every head of a decode token, keys stored as in {@link #dotColumns}
     * with KV head k's rows kvStride after KV head 0's:
     * out[outOff + h · outStride + o] = Σ_d q[qOff + h · dims + d] · kT[kOff + (h / group) · kvStride + d · stride + o]
     * for h in [0, heads), o in [0, n), d in [0, dims). This version is the obvious one, a head at a time.
     */
    public void dotColumnsHeads(float[] q, int qOff, float[] kT, int kOff, int stride, int kvStride, int dims, int heads, int group,
            float[] out, int outOff, int outStride, int n) {
        for (int h = 0; h < heads; h++) {
            dotColumns(q, qOff + h * dims, kT, kOff + (h / group) * kvStride, stride, dims, out, outOff + h * outStride, n);
        }
    }

    /**
     * One KV block's value rows weighted into every head's output, for a decode token:
     * out[outOff + h · dims + d] += Σ_o p[pOff + h · pStride + o] · v[vOff + o · stride + (h / group) · dims + d]
     * for h in [0, heads), o in [0, n), d in [0, dims); query head h reads KV head h / group.
     * This version is the obvious one, a head at a time.
     */
    public void addWeightedRowsHeads(float[] p, int pOff, int pStride, int n, float[] v, int vOff, int stride, int dims,
            int heads, int group, float[] out, int outOff) {
        for (int h = 0; h < heads; h++) {
            addWeightedRows(p, pOff + h * pStride, n, v, vOff + (h / group) * dims, stride, dims, out, outOff + h * dims);
        }
    }

    /** dst[dstOff + i] = the BF16 value src[srcOff + i] as a float, for i in [0, n): a block of a BF16 KV cache widened for reuse. */
    public abstract void bf16ToFloats(short[] src, int srcOff, float[] dst, int dstOff, int n);

    /** {@link #dotColumns} with BF16 keys (a 16-bit KV cache), widened to FP32 as they are read. */
    public abstract void dotColumns(float[] q, int qOff, short[] kT, int kOff, int stride, int dims, float[] out, int outOff, int n);

    /** {@link #addWeightedRows} with BF16 values. */
    public abstract void addWeightedRows(float[] p, int pOff, int n, short[] v, int vOff, int stride, int dims, float[] out, int outOff);

    /** The largest of s[off + i] for i in [0, n) (−∞ when n is 0). */
    public abstract float largest(float[] s, int off, int n);

    /**
     * In place, s[off + i] = e^((s[off + i] − subtract) · scale) for i in [0, n); returns their sum.
     * With {@code subtract} at least every s[off + i] (a running softmax's largest score so far),
     * every value is at most 1 and none overflows. {@code scale} must be positive.
     */
    public abstract float expSum(float[] s, int off, int n, float subtract, float scale);

    static final class ScalarMath extends VectorMath {
        @Override
        public String name() {
            return "scalar";
        }

        @Override
        public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int i = 0;
            for (; i + 3 < n; i += 4) {
                s0 += a[aOff + i] * b[bOff + i];
                s1 += a[aOff + i + 1] * b[bOff + i + 1];
                s2 += a[aOff + i + 2] * b[bOff + i + 2];
                s3 += a[aOff + i + 3] * b[bOff + i + 3];
            }
            for (; i < n; i++) {
                s0 += a[aOff + i] * b[bOff + i];
            }
            return (s0 + s1) + (s2 + s3);
        }

        @Override
        public void dot4(float[] w, int wOff, float[] x0, float[] x1, float[] x2, float[] x3, int n, float[] out) {
            out[0] = dot(w, wOff, x0, 0, n);
            out[1] = dot(w, wOff, x1, 0, n);
            out[2] = dot(w, wOff, x2, 0, n);
            out[3] = dot(w, wOff, x3, 0, n);
        }

        @Override
        public void dot2x4(float[] w, int wOff0, int wOff1, float[] x0, float[] x1, float[] x2, float[] x3, int n, float[] out) {
            float[][] xs = {x0, x1, x2, x3};
            for (int k = 0; k < 4; k++) {
                out[k] = dot(w, wOff0, xs[k], 0, n);
                out[4 + k] = dot(w, wOff1, xs[k], 0, n);
            }
        }

        @Override
        public int panelWidth() {
            return 16;
        }

        @Override
        public int panelRows() {
            return 1;
        }

        @Override
        public void rowsTimesPanel(float[] w, int wOff, int rows, int cols, float[] xT, int width, float[] out) {
            for (int r = 0; r < rows; r++) {
                for (int t = 0; t < width; t++) {
                    float s = 0f;
                    for (int j = 0; j < cols; j++) {
                        s += w[wOff + r * cols + j] * xT[j * width + t];
                    }
                    out[r * width + t] = s;
                }
            }
        }

        @Override
        public void rowsTimesPanel(ByteBuffer bytes, int byteOff, int rows, int cols, float[] xT, int width, float[] out) {
            for (int r = 0; r < rows; r++) {
                for (int t = 0; t < width; t++) {
                    float s = 0f;
                    for (int j = 0; j < cols; j++) {
                        s += bytes.getFloat(byteOff + 4 * (r * cols + j)) * xT[j * width + t];
                    }
                    out[r * width + t] = s;
                }
            }
        }

        @Override
        public void rowsTimesPanelBf16(ByteBuffer bytes, int byteOff, int rows, int cols, float[] xT, int width, float[] out) {
            for (int r = 0; r < rows; r++) {
                for (int t = 0; t < width; t++) {
                    float s = 0f;
                    for (int j = 0; j < cols; j++) {
                        s += Float.intBitsToFloat(bytes.getShort(byteOff + 2 * (r * cols + j)) << 16) * xT[j * width + t];
                    }
                    out[r * width + t] = s;
                }
            }
        }

        @Override
        public void dotF32Rows(ByteBuffer bytes, int byteOff, int rowBytes, int rows, float[] x, int n, float[] out, int outOff) {
            for (int r = 0; r < rows; r++) {
                int at = byteOff + r * rowBytes;
                float s0 = 0, s1 = 0;
                int i = 0;
                for (; i + 1 < n; i += 2) {
                    s0 += bytes.getFloat(at + 4 * i) * x[i];
                    s1 += bytes.getFloat(at + 4 * i + 4) * x[i + 1];
                }
                if (i < n) {
                    s0 += bytes.getFloat(at + 4 * i) * x[i];
                }
                out[outOff + r] = s0 + s1;
            }
        }

        @Override
        public float[] pairOrder(float[] x, int n) {
            return x;
        }

        @Override
        public float dotBf16(ByteBuffer bytes, int byteOff, float[] x, int n) {
            float s0 = 0, s1 = 0;
            int i = 0;
            for (; i + 1 < n; i += 2) {
                s0 += DType.bf16ToFloat(bytes.getShort(byteOff + 2 * i)) * x[i];
                s1 += DType.bf16ToFloat(bytes.getShort(byteOff + 2 * i + 2)) * x[i + 1];
            }
            if (i < n) {
                s0 += DType.bf16ToFloat(bytes.getShort(byteOff + 2 * i)) * x[i];
            }
            return s0 + s1;
        }

        @Override
        public int pairRun() {
            return 1;
        }

        @Override
        public void bf16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n, boolean inPairOrder) {
            for (int i = 0; i < n; i++) {
                dst[i] = DType.bf16ToFloat(bytes.getShort(byteOff + 2 * i));
            }
        }

        @Override
        public float dotF16(ByteBuffer bytes, int byteOff, float[] x, int n) {
            float s0 = 0, s1 = 0;
            int i = 0;
            for (; i + 1 < n; i += 2) {
                s0 += DType.halfToFloat(bytes.getShort(byteOff + 2 * i)) * x[i];
                s1 += DType.halfToFloat(bytes.getShort(byteOff + 2 * i + 2)) * x[i + 1];
            }
            if (i < n) {
                s0 += DType.halfToFloat(bytes.getShort(byteOff + 2 * i)) * x[i];
            }
            return s0 + s1;
        }

        @Override
        public void f16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n, boolean inPairOrder) {
            for (int i = 0; i < n; i++) {
                dst[i] = DType.halfToFloat(bytes.getShort(byteOff + 2 * i));
            }
        }

        @Override
        public void swiglu(float[] gate, float[] up, int n) {
            for (int i = 0; i < n; i++) {
                float g = gate[i];
                gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
            }
        }

        @Override
        public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
            for (int i = 0; i < n; i++) {
                y[yOff + i] += alpha * x[xOff + i];
            }
        }

        @Override
        public void dotColumns(float[] q, int qOff, float[] kT, int kOff, int stride, int dims, float[] out, int outOff, int n) {
            for (int o = 0; o < n; o++) {
                float s = 0f;
                for (int d = 0; d < dims; d++) {
                    s += q[qOff + d] * kT[kOff + d * stride + o];
                }
                out[outOff + o] = s;
            }
        }

        @Override
        public void addWeightedRows(float[] p, int pOff, int n, float[] v, int vOff, int stride, int dims, float[] out, int outOff) {
            for (int o = 0; o < n; o++) {
                axpy(p[pOff + o], v, vOff + o * stride, out, outOff, dims);
            }
        }

        @Override
        public void dotColumns4(float[] q0, float[] q1, float[] q2, float[] q3, int qOff, float[] kT, int kOff, int stride, int dims,
                float[] out, int outOff, int outStride, int n) {
            dotColumns(q0, qOff, kT, kOff, stride, dims, out, outOff, n);
            dotColumns(q1, qOff, kT, kOff, stride, dims, out, outOff + outStride, n);
            dotColumns(q2, qOff, kT, kOff, stride, dims, out, outOff + 2 * outStride, n);
            dotColumns(q3, qOff, kT, kOff, stride, dims, out, outOff + 3 * outStride, n);
        }

        @Override
        public void addWeightedRows4(float[] p, int pOff, int pStride, int n, float[] v, int vOff, int stride, int dims,
                float[] out0, float[] out1, float[] out2, float[] out3, int outOff) {
            addWeightedRows(p, pOff, n, v, vOff, stride, dims, out0, outOff);
            addWeightedRows(p, pOff + pStride, n, v, vOff, stride, dims, out1, outOff);
            addWeightedRows(p, pOff + 2 * pStride, n, v, vOff, stride, dims, out2, outOff);
            addWeightedRows(p, pOff + 3 * pStride, n, v, vOff, stride, dims, out3, outOff);
        }

        @Override
        public void bf16ToFloats(short[] src, int srcOff, float[] dst, int dstOff, int n) {
            for (int i = 0; i < n; i++) {
                dst[dstOff + i] = DType.bf16ToFloat(src[srcOff + i]);
            }
        }

        @Override
        public void dotColumns(float[] q, int qOff, short[] kT, int kOff, int stride, int dims, float[] out, int outOff, int n) {
            for (int o = 0; o < n; o++) {
                float sum = 0;
                for (int d = 0; d < dims; d++) {
                    sum += q[qOff + d] * DType.bf16ToFloat(kT[kOff + d * stride + o]);
                }
                out[outOff + o] = sum;
            }
        }

        @Override
        public void addWeightedRows(float[] p, int pOff, int n, short[] v, int vOff, int stride, int dims, float[] out, int outOff) {
            for (int o = 0; o < n; o++) {
                float weight = p[pOff + o];
                for (int d = 0; d < dims; d++) {
                    out[outOff + d] += weight * DType.bf16ToFloat(v[vOff + o * stride + d]);
                }
            }
        }

        @Override
        public float largest(float[] s, int off, int n) {
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) {
                max = Math.max(max, s[off + i]);
            }
            return max;
        }

        @Override
        public float expSum(float[] s, int off, int n, float subtract, float scale) {
            double sum = 0;
            for (int i = 0; i < n; i++) {
                s[off + i] = FastExp.exp((s[off + i] - subtract) * scale);
                sum += s[off + i];
            }
            return (float) sum;
        }
    }
}
