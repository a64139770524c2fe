package io.longdoc.engine.cpu;

import io.longdoc.engine.model.DType;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** {@link VectorMath} on the Vector API: 256-bit lanes, or the machine's width where that is less (see {@link #S}). */
final class SimdMath extends VectorMath {
    /**
     * 256 bits, or 128 where the machine has no more; {@code -Dlongdoc.cpu.vectorBits=512} takes
     * 512 where it has AVX-512 (the build tests the kernels at 512 bits too: the Vector API emulates a
     * width the CPU lacks, slowly). Measured on a 2-core AVX-512 machine (Zen 5) with the 110M
     * benchmark: 512-bit loads stream mapped weights 15–25 % slower than 256-bit ones (slower still
     * when rows are not 64-byte aligned, as safetensors files leave them), so decode ran at 0.75 of
     * run.c against 0.85; 512-bit panels made a long prefill faster (about 1 300 against 950
     * tokens/s), but a kernel of each width in one JVM let C2 compile the panel kernels without their
     * intrinsics now and then (a batch step 10× slower), so one width serves all kernels.
     */
    private static final VectorSpecies<Float> S = switch (Integer.getInteger("longdoc.cpu.vectorBits", 0)) {
        case 512 -> FloatVector.SPECIES_512;
        case 256 -> FloatVector.SPECIES_256;
        default -> FloatVector.SPECIES_PREFERRED.vectorBitSize() > 256 ? FloatVector.SPECIES_256 : FloatVector.SPECIES_PREFERRED;
    };
    private static final VectorMath SCALAR = VectorMath.scalar();
    /** BF16 values, half the width of S: one load widens to one vector of floats. */
    private static final VectorSpecies<Short> HALF = VectorSpecies.of(short.class, VectorShape.forBitSize(S.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, S.vectorShape());
    /**
     * Whether this JDK's Vector API loads from a ByteBuffer. {@code fromByteBuffer} exists up to
     * Java 19; from Java 20 loads from off-heap memory take a MemorySegment, which Java 17 code
     * cannot name. Without it, rows of mapped weights are copied into arrays first.
     */
    private static final boolean BUFFER_LOADS = hasBufferLoads();

    private static boolean hasBufferLoads() {
        try {
            FloatVector.class.getMethod("fromByteBuffer", VectorSpecies.class, ByteBuffer.class, int.class, ByteOrder.class);
            return true;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    /** Whether the panel kernels read mapped F32 rows in place (see {@link DirectMemory}). */
    private final boolean panelRowsInPlace;

    SimdMath() {
        this(true);
    }

    /** With {@code panelRowsInPlace} false, callers copy F32 rows for the panel kernels, as where {@link DirectMemory} is not available. */
    SimdMath(boolean panelRowsInPlace) {
        this.panelRowsInPlace = panelRowsInPlace && DirectMemory.AVAILABLE;
    }

    @Override
    public String name() {
        return "simd-" + S.vectorBitSize() + (BUFFER_LOADS ? "" : ", rows copied");
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
    public int panelWidth() {
        return 2 * S.length();
    }

    @Override
    public int panelRows() {
        return 12;
    }

    @Override
    public void rowsTimesPanel(float[] w, int wOff, int rows, int cols, float[] xT, int width, float[] out) {
        if (width == S.length()) {
            rowsTimesHalfPanel(w, wOff, rows, cols, xT, out);
            return;
        }
        int lanes = S.length();
        if (width != 2 * lanes) {
            throw new IllegalArgumentException("panel width " + width + ": this kernel takes " + lanes + " or " + 2 * lanes);
        }
        for (int r = 0; r < rows; r += 6) {
            // Six rows × two vectors: twelve accumulators, two loads of xT and six broadcasts per
            // twelve FMAs. A last group of fewer rows repeats its last row rather than taking a slower kernel.
            int last = rows - 1;
            int o0 = wOff + r * cols, o1 = wOff + Math.min(r + 1, last) * cols, o2 = wOff + Math.min(r + 2, last) * cols;
            int o3 = wOff + Math.min(r + 3, last) * cols, o4 = wOff + Math.min(r + 4, last) * cols, o5 = wOff + Math.min(r + 5, last) * cols;
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
            FloatVector a3 = FloatVector.zero(S), a4 = FloatVector.zero(S), a5 = FloatVector.zero(S);
            FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S), b2 = FloatVector.zero(S);
            FloatVector b3 = FloatVector.zero(S), b4 = FloatVector.zero(S), b5 = FloatVector.zero(S);
            for (int j = 0, x = 0; j < cols; j++, x += width) {
                FloatVector lo = FloatVector.fromArray(S, xT, x), hi = FloatVector.fromArray(S, xT, x + lanes);
                FloatVector wv = FloatVector.broadcast(S, w[o0 + j]);
                a0 = wv.fma(lo, a0);
                b0 = wv.fma(hi, b0);
                wv = FloatVector.broadcast(S, w[o1 + j]);
                a1 = wv.fma(lo, a1);
                b1 = wv.fma(hi, b1);
                wv = FloatVector.broadcast(S, w[o2 + j]);
                a2 = wv.fma(lo, a2);
                b2 = wv.fma(hi, b2);
                wv = FloatVector.broadcast(S, w[o3 + j]);
                a3 = wv.fma(lo, a3);
                b3 = wv.fma(hi, b3);
                wv = FloatVector.broadcast(S, w[o4 + j]);
                a4 = wv.fma(lo, a4);
                b4 = wv.fma(hi, b4);
                wv = FloatVector.broadcast(S, w[o5 + j]);
                a5 = wv.fma(lo, a5);
                b5 = wv.fma(hi, b5);
            }
            // As in rowsTimesHalfPanel: last to first, rows past the last stored over the last's.
            int base = r * width, lastRow = Math.min(6, rows - r) - 1;
            a5.intoArray(out, base + Math.min(5, lastRow) * width);
            b5.intoArray(out, base + Math.min(5, lastRow) * width + lanes);
            a4.intoArray(out, base + Math.min(4, lastRow) * width);
            b4.intoArray(out, base + Math.min(4, lastRow) * width + lanes);
            a3.intoArray(out, base + Math.min(3, lastRow) * width);
            b3.intoArray(out, base + Math.min(3, lastRow) * width + lanes);
            a2.intoArray(out, base + Math.min(2, lastRow) * width);
            b2.intoArray(out, base + Math.min(2, lastRow) * width + lanes);
            a1.intoArray(out, base + Math.min(1, lastRow) * width);
            b1.intoArray(out, base + Math.min(1, lastRow) * width + lanes);
            a0.intoArray(out, base);
            b0.intoArray(out, base + lanes);
        }
    }

    /**
     * {@link #rowsTimesPanel} for a half panel, one vector of tokens: twelve rows × one vector,
     * twelve accumulators, one load of xT and twelve broadcasts per twelve FMAs. A last group of
     * fewer rows repeats its last row.
     */
    private static void rowsTimesHalfPanel(float[] w, int wOff, int rows, int cols, float[] xT, float[] out) {
        int width = S.length();
        for (int r = 0; r < rows; r += 12) {
            int last = rows - 1;
            int o0 = wOff + r * cols, o1 = wOff + Math.min(r + 1, last) * cols, o2 = wOff + Math.min(r + 2, last) * cols;
            int o3 = wOff + Math.min(r + 3, last) * cols, o4 = wOff + Math.min(r + 4, last) * cols, o5 = wOff + Math.min(r + 5, last) * cols;
            int o6 = wOff + Math.min(r + 6, last) * cols, o7 = wOff + Math.min(r + 7, last) * cols, o8 = wOff + Math.min(r + 8, last) * cols;
            int o9 = wOff + Math.min(r + 9, last) * cols, o10 = wOff + Math.min(r + 10, last) * cols, o11 = wOff + Math.min(r + 11, last) * cols;
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S), a3 = FloatVector.zero(S);
            FloatVector a4 = FloatVector.zero(S), a5 = FloatVector.zero(S), a6 = FloatVector.zero(S), a7 = FloatVector.zero(S);
            FloatVector a8 = FloatVector.zero(S), a9 = FloatVector.zero(S), a10 = FloatVector.zero(S), a11 = FloatVector.zero(S);
            for (int j = 0, x = 0; j < cols; j++, x += width) {
                FloatVector panel = FloatVector.fromArray(S, xT, x);
                a0 = FloatVector.broadcast(S, w[o0 + j]).fma(panel, a0);
                a1 = FloatVector.broadcast(S, w[o1 + j]).fma(panel, a1);
                a2 = FloatVector.broadcast(S, w[o2 + j]).fma(panel, a2);
                a3 = FloatVector.broadcast(S, w[o3 + j]).fma(panel, a3);
                a4 = FloatVector.broadcast(S, w[o4 + j]).fma(panel, a4);
                a5 = FloatVector.broadcast(S, w[o5 + j]).fma(panel, a5);
                a6 = FloatVector.broadcast(S, w[o6 + j]).fma(panel, a6);
                a7 = FloatVector.broadcast(S, w[o7 + j]).fma(panel, a7);
                a8 = FloatVector.broadcast(S, w[o8 + j]).fma(panel, a8);
                a9 = FloatVector.broadcast(S, w[o9 + j]).fma(panel, a9);
                a10 = FloatVector.broadcast(S, w[o10 + j]).fma(panel, a10);
                a11 = FloatVector.broadcast(S, w[o11 + j]).fma(panel, a11);
            }
            // Rows past the last repeat it, so their sums equal its: stored last to first, each at
            // its own row or, past the last, at the last's, they leave the right values and write nothing beyond.
            int base = r * width, lastRow = Math.min(12, rows - r) - 1;
            a11.intoArray(out, base + Math.min(11, lastRow) * width);
            a10.intoArray(out, base + Math.min(10, lastRow) * width);
            a9.intoArray(out, base + Math.min(9, lastRow) * width);
            a8.intoArray(out, base + Math.min(8, lastRow) * width);
            a7.intoArray(out, base + Math.min(7, lastRow) * width);
            a6.intoArray(out, base + Math.min(6, lastRow) * width);
            a5.intoArray(out, base + Math.min(5, lastRow) * width);
            a4.intoArray(out, base + Math.min(4, lastRow) * width);
            a3.intoArray(out, base + Math.min(3, lastRow) * width);
            a2.intoArray(out, base + Math.min(2, lastRow) * width);
            a1.intoArray(out, base + Math.min(1, lastRow) * width);
            a0.intoArray(out, base);
        }
    }

    @Override
    public boolean readsPanelRowsInPlace() {
        return panelRowsInPlace;
    }

    /**
     * The panel kernels above, with each weight value loaded by address from the mapped rows (the
     * array kernels' structure and accumulators; see them for the layout). While the arithmetic of one
     * group of rows runs, the hardware prefetcher streams the next rows in, which a copy of the rows
     * before the arithmetic does not allow.
     */
    @Override
    public void rowsTimesPanel(ByteBuffer bytes, int byteOff, int rows, int cols, float[] xT, int width, float[] out) {
        if (!DirectMemory.AVAILABLE) {
            // Not reached from CpuBackend, which copies the rows when readsPanelRowsInPlace() is false.
            SCALAR.rowsTimesPanel(bytes, byteOff, rows, cols, xT, width, out);
            return;
        }
        int lanes = S.length();
        if (width != lanes && width != 2 * lanes) {
            throw new IllegalArgumentException("panel width " + width + ": this kernel takes " + lanes + " or " + 2 * lanes);
        }
        Objects.checkFromIndexSize(0, cols * width, xT.length);
        Objects.checkFromIndexSize(0, rows * width, out.length);
        long at = DirectMemory.address(bytes, byteOff, 4L * rows * cols);
        if (width == lanes) {
            halfPanelAt(at, rows, cols, xT, out);
        } else {
            panelAt(at, rows, cols, xT, out);
        }
        Reference.reachabilityFence(bytes);  // the mapping must outlive the loads by address
    }

    /** rowsTimesPanel's six rows × two vectors, rows from address {@code at}. */
    private static void panelAt(long at, int rows, int cols, float[] xT, float[] out) {
        int lanes = S.length(), width = 2 * lanes;
        long rowBytes = 4L * cols;
        for (int r = 0; r < rows; r += 6) {
            int last = rows - 1;
            long o0 = at + r * rowBytes, o1 = at + Math.min(r + 1, last) * rowBytes, o2 = at + Math.min(r + 2, last) * rowBytes;
            long o3 = at + Math.min(r + 3, last) * rowBytes, o4 = at + Math.min(r + 4, last) * rowBytes, o5 = at + Math.min(r + 5, last) * rowBytes;
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
            FloatVector a3 = FloatVector.zero(S), a4 = FloatVector.zero(S), a5 = FloatVector.zero(S);
            FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S), b2 = FloatVector.zero(S);
            FloatVector b3 = FloatVector.zero(S), b4 = FloatVector.zero(S), b5 = FloatVector.zero(S);
            int x = 0;
            for (long j = 0; j < rowBytes; j += 4, x += width) {
                FloatVector lo = FloatVector.fromArray(S, xT, x), hi = FloatVector.fromArray(S, xT, x + lanes);
                FloatVector wv = FloatVector.broadcast(S, DirectMemory.getFloat(o0 + j));
                a0 = wv.fma(lo, a0);
                b0 = wv.fma(hi, b0);
                wv = FloatVector.broadcast(S, DirectMemory.getFloat(o1 + j));
                a1 = wv.fma(lo, a1);
                b1 = wv.fma(hi, b1);
                wv = FloatVector.broadcast(S, DirectMemory.getFloat(o2 + j));
                a2 = wv.fma(lo, a2);
                b2 = wv.fma(hi, b2);
                wv = FloatVector.broadcast(S, DirectMemory.getFloat(o3 + j));
                a3 = wv.fma(lo, a3);
                b3 = wv.fma(hi, b3);
                wv = FloatVector.broadcast(S, DirectMemory.getFloat(o4 + j));
                a4 = wv.fma(lo, a4);
                b4 = wv.fma(hi, b4);
                wv = FloatVector.broadcast(S, DirectMemory.getFloat(o5 + j));
                a5 = wv.fma(lo, a5);
                b5 = wv.fma(hi, b5);
            }
            int base = r * width, lastRow = Math.min(6, rows - r) - 1;
            a5.intoArray(out, base + Math.min(5, lastRow) * width);
            b5.intoArray(out, base + Math.min(5, lastRow) * width + lanes);
            a4.intoArray(out, base + Math.min(4, lastRow) * width);
            b4.intoArray(out, base + Math.min(4, lastRow) * width + lanes);
            a3.intoArray(out, base + Math.min(3, lastRow) * width);
            b3.intoArray(out, base + Math.min(3, lastRow) * width + lanes);
            a2.intoArray(out, base + Math.min(2, lastRow) * width);
            b2.intoArray(out, base + Math.min(2, lastRow) * width + lanes);
            a1.intoArray(out, base + Math.min(1, lastRow) * width);
            b1.intoArray(out, base + Math.min(1, lastRow) * width + lanes);
            a0.intoArray(out, base);
            b0.intoArray(out, base + lanes);
        }
    }

    /** rowsTimesHalfPanel's twelve rows × one vector, rows from address {@code at}. */
    private static void halfPanelAt(long at, int rows, int cols, float[] xT, float[] out) {
        int width = S.length();
        long rowBytes = 4L * cols;
        for (int r = 0; r < rows; r += 12) {
            int last = rows - 1;
            long o0 = at + r * rowBytes, o1 = at + Math.min(r + 1, last) * rowBytes, o2 = at + Math.min(r + 2, last) * rowBytes;
            long o3 = at + Math.min(r + 3, last) * rowBytes, o4 = at + Math.min(r + 4, last) * rowBytes, o5 = at + Math.min(r + 5, last) * rowBytes;
            long o6 = at + Math.min(r + 6, last) * rowBytes, o7 = at + Math.min(r + 7, last) * rowBytes, o8 = at + Math.min(r + 8, last) * rowBytes;
            long o9 = at + Math.min(r + 9, last) * rowBytes, o10 = at + Math.min(r + 10, last) * rowBytes, o11 = at + Math.min(r + 11, last) * rowBytes;
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S), a3 = FloatVector.zero(S);
            FloatVector a4 = FloatVector.zero(S), a5 = FloatVector.zero(S), a6 = FloatVector.zero(S), a7 = FloatVector.zero(S);
            FloatVector a8 = FloatVector.zero(S), a9 = FloatVector.zero(S), a10 = FloatVector.zero(S), a11 = FloatVector.zero(S);
            int x = 0;
            for (long j = 0; j < rowBytes; j += 4, x += width) {
                FloatVector panel = FloatVector.fromArray(S, xT, x);
                a0 = FloatVector.broadcast(S, DirectMemory.getFloat(o0 + j)).fma(panel, a0);
                a1 = FloatVector.broadcast(S, DirectMemory.getFloat(o1 + j)).fma(panel, a1);
                a2 = FloatVector.broadcast(S, DirectMemory.getFloat(o2 + j)).fma(panel, a2);
                a3 = FloatVector.broadcast(S, DirectMemory.getFloat(o3 + j)).fma(panel, a3);
                a4 = FloatVector.broadcast(S, DirectMemory.getFloat(o4 + j)).fma(panel, a4);
                a5 = FloatVector.broadcast(S, DirectMemory.getFloat(o5 + j)).fma(panel, a5);
                a6 = FloatVector.broadcast(S, DirectMemory.getFloat(o6 + j)).fma(panel, a6);
                a7 = FloatVector.broadcast(S, DirectMemory.getFloat(o7 + j)).fma(panel, a7);
                a8 = FloatVector.broadcast(S, DirectMemory.getFloat(o8 + j)).fma(panel, a8);
                a9 = FloatVector.broadcast(S, DirectMemory.getFloat(o9 + j)).fma(panel, a9);
                a10 = FloatVector.broadcast(S, DirectMemory.getFloat(o10 + j)).fma(panel, a10);
                a11 = FloatVector.broadcast(S, DirectMemory.getFloat(o11 + j)).fma(panel, a11);
            }
            int base = r * width, lastRow = Math.min(12, rows - r) - 1;
            a11.intoArray(out, base + Math.min(11, lastRow) * width);
            a10.intoArray(out, base + Math.min(10, lastRow) * width);
            a9.intoArray(out, base + Math.min(9, lastRow) * width);
            a8.intoArray(out, base + Math.min(8, lastRow) * width);
            a7.intoArray(out, base + Math.min(7, lastRow) * width);
            a6.intoArray(out, base + Math.min(6, lastRow) * width);
            a5.intoArray(out, base + Math.min(5, lastRow) * width);
            a4.intoArray(out, base + Math.min(4, lastRow) * width);
            a3.intoArray(out, base + Math.min(3, lastRow) * width);
            a2.intoArray(out, base + Math.min(2, lastRow) * width);
            a1.intoArray(out, base + Math.min(1, lastRow) * width);
            a0.intoArray(out, base);
        }
    }

    /**
     * {@link #rowsTimesPanel(ByteBuffer, int, int, int, float[], int, float[])} for BF16 rows, whole
     * panels only: the six-row kernel, each weight value loaded by address and widened on the way to
     * its broadcast, so a batch widens no block of rows into scratch first.
     */
    @Override
    public void rowsTimesPanelBf16(ByteBuffer bytes, int byteOff, int rows, int cols, float[] xT, int width, float[] out) {
        if (!DirectMemory.AVAILABLE) {
            SCALAR.rowsTimesPanelBf16(bytes, byteOff, rows, cols, xT, width, out);
            return;
        }
        if (width != panelWidth() || cols % 2 != 0) {
            throw new IllegalArgumentException("this kernel takes whole panels (" + panelWidth() + " tokens) and an even number of columns, got "
                    + width + " and " + cols);
        }
        Objects.checkFromIndexSize(0, cols * width, xT.length);
        Objects.checkFromIndexSize(0, rows * width, out.length);
        long at = DirectMemory.address(bytes, byteOff, 2L * rows * cols);
        panelBf16At(at, rows, cols, xT, out);
        Reference.reachabilityFence(bytes);
    }

    /**
     * panelAt for BF16 rows: each load takes two values of a row (one int), columns j and j + 1,
     * widened with a shift and a mask, the first against the panel's column j, the second against
     * column j + 1. Six rows' ints stay in general registers between the two halves.
     */
    private static void panelBf16At(long at, int rows, int cols, float[] xT, float[] out) {
        int lanes = S.length(), width = 2 * lanes;
        long rowBytes = 2L * cols;
        for (int r = 0; r < rows; r += 6) {
            int last = rows - 1;
            long o0 = at + r * rowBytes, o1 = at + Math.min(r + 1, last) * rowBytes, o2 = at + Math.min(r + 2, last) * rowBytes;
            long o3 = at + Math.min(r + 3, last) * rowBytes, o4 = at + Math.min(r + 4, last) * rowBytes, o5 = at + Math.min(r + 5, last) * rowBytes;
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
            FloatVector a3 = FloatVector.zero(S), a4 = FloatVector.zero(S), a5 = FloatVector.zero(S);
            FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S), b2 = FloatVector.zero(S);
            FloatVector b3 = FloatVector.zero(S), b4 = FloatVector.zero(S), b5 = FloatVector.zero(S);
            int x = 0;
            for (long j = 0; j < rowBytes; j += 4, x += 2 * width) {
                int w0 = DirectMemory.getInt(o0 + j), w1 = DirectMemory.getInt(o1 + j), w2 = DirectMemory.getInt(o2 + j);
                int w3 = DirectMemory.getInt(o3 + j), w4 = DirectMemory.getInt(o4 + j), w5 = DirectMemory.getInt(o5 + j);
                FloatVector lo = FloatVector.fromArray(S, xT, x), hi = FloatVector.fromArray(S, xT, x + lanes);
                FloatVector wv = FloatVector.broadcast(S, Float.intBitsToFloat(w0 << 16));
                a0 = wv.fma(lo, a0);
                b0 = wv.fma(hi, b0);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w1 << 16));
                a1 = wv.fma(lo, a1);
                b1 = wv.fma(hi, b1);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w2 << 16));
                a2 = wv.fma(lo, a2);
                b2 = wv.fma(hi, b2);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w3 << 16));
                a3 = wv.fma(lo, a3);
                b3 = wv.fma(hi, b3);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w4 << 16));
                a4 = wv.fma(lo, a4);
                b4 = wv.fma(hi, b4);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w5 << 16));
                a5 = wv.fma(lo, a5);
                b5 = wv.fma(hi, b5);
                lo = FloatVector.fromArray(S, xT, x + width);
                hi = FloatVector.fromArray(S, xT, x + width + lanes);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w0 & 0xFFFF0000));
                a0 = wv.fma(lo, a0);
                b0 = wv.fma(hi, b0);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w1 & 0xFFFF0000));
                a1 = wv.fma(lo, a1);
                b1 = wv.fma(hi, b1);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w2 & 0xFFFF0000));
                a2 = wv.fma(lo, a2);
                b2 = wv.fma(hi, b2);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w3 & 0xFFFF0000));
                a3 = wv.fma(lo, a3);
                b3 = wv.fma(hi, b3);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w4 & 0xFFFF0000));
                a4 = wv.fma(lo, a4);
                b4 = wv.fma(hi, b4);
                wv = FloatVector.broadcast(S, Float.intBitsToFloat(w5 & 0xFFFF0000));
                a5 = wv.fma(lo, a5);
                b5 = wv.fma(hi, b5);
            }
            int base = r * width, lastRow = Math.min(6, rows - r) - 1;
            a5.intoArray(out, base + Math.min(5, lastRow) * width);
            b5.intoArray(out, base + Math.min(5, lastRow) * width + lanes);
            a4.intoArray(out, base + Math.min(4, lastRow) * width);
            b4.intoArray(out, base + Math.min(4, lastRow) * width + lanes);
            a3.intoArray(out, base + Math.min(3, lastRow) * width);
            b3.intoArray(out, base + Math.min(3, lastRow) * width + lanes);
            a2.intoArray(out, base + Math.min(2, lastRow) * width);
            b2.intoArray(out, base + Math.min(2, lastRow) * width + lanes);
            a1.intoArray(out, base + Math.min(1, lastRow) * width);
            b1.intoArray(out, base + Math.min(1, lastRow) * width + lanes);
            a0.intoArray(out, base);
            b0.intoArray(out, base + lanes);
        }
    }

    @Override
    public boolean readsBuffersFast() {
        return BUFFER_LOADS;
    }

    /**
     * Runs of 2·lanes elements, each split into its even-indexed then its odd-indexed elements: the
     * order in which {@link #dotBf16} widens BF16 pairs without moving lanes. The tail past the
     * last whole run keeps its order.
     */
    @Override
    public float[] pairOrder(float[] x, int n) {
        if (!BUFFER_LOADS) {
            return x;  // the 16-bit kernels fall back to the scalar ones, which take the natural order
        }
        int lanes = S.length(), run = 2 * lanes;
        float[] out = new float[n];
        int i = 0;
        for (; i + run <= n; i += run) {
            for (int k = 0; k < lanes; k++) {
                out[i + k] = x[i + 2 * k];
                out[i + lanes + k] = x[i + 2 * k + 1];
            }
        }
        System.arraycopy(x, i, out, i, n - i);
        return out;
    }

    @Override
    public float dotBf16(ByteBuffer bytes, int byteOff, float[] xOrdered, int n) {
        int lanes = S.length(), run = 2 * lanes;
        if (n < run || !BUFFER_LOADS) {
            return SCALAR.dotBf16(bytes, byteOff, xOrdered, n);  // no whole run: the order is the natural one
        }
        // A vector of ints holds 2·lanes BF16 values as (odd << 16 | even) pairs: shifting left
        // widens the even ones, masking off the low half the odd ones, and x is stored to match.
        // Eight loads per pass keep enough memory reads in flight to stream weights at full speed.
        // No helper methods for the widening: one that C2 does not inline boxes its vectors (measured 5× slower).
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        FloatVector acc0 = FloatVector.zero(S), acc1 = FloatVector.zero(S), acc2 = FloatVector.zero(S), acc3 = FloatVector.zero(S);
        int i = 0;
        for (; i + 8 * run <= n; i += 8 * run) {
            int at = byteOff + 2 * i;
            IntVector v0 = IntVector.fromByteBuffer(INTS, bytes, at, le), v1 = IntVector.fromByteBuffer(INTS, bytes, at + 4 * lanes, le);
            IntVector v2 = IntVector.fromByteBuffer(INTS, bytes, at + 8 * lanes, le), v3 = IntVector.fromByteBuffer(INTS, bytes, at + 12 * lanes, le);
            IntVector v4 = IntVector.fromByteBuffer(INTS, bytes, at + 16 * lanes, le), v5 = IntVector.fromByteBuffer(INTS, bytes, at + 20 * lanes, le);
            IntVector v6 = IntVector.fromByteBuffer(INTS, bytes, at + 24 * lanes, le), v7 = IntVector.fromByteBuffer(INTS, bytes, at + 28 * lanes, le);
            acc0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i), acc0);
            acc1 = v0.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + lanes), acc1);
            acc2 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + run), acc2);
            acc3 = v1.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + run + lanes), acc3);
            acc0 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 2 * run), acc0);
            acc1 = v2.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 2 * run + lanes), acc1);
            acc2 = v3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 3 * run), acc2);
            acc3 = v3.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 3 * run + lanes), acc3);
            acc0 = v4.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 4 * run), acc0);
            acc1 = v4.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 4 * run + lanes), acc1);
            acc2 = v5.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 5 * run), acc2);
            acc3 = v5.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 5 * run + lanes), acc3);
            acc0 = v6.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 6 * run), acc0);
            acc1 = v6.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 6 * run + lanes), acc1);
            acc2 = v7.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 7 * run), acc2);
            acc3 = v7.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + 7 * run + lanes), acc3);
        }
        for (; i + run <= n; i += run) {
            IntVector v = IntVector.fromByteBuffer(INTS, bytes, byteOff + 2 * i, le);
            acc0 = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i), acc0);
            acc1 = v.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(S, xOrdered, i + lanes), acc1);
        }
        float s = acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += DType.bf16ToFloat(bytes.getShort(byteOff + 2 * i)) * xOrdered[i];
        }
        return s;
    }

    @Override
    public int pairRun() {
        return BUFFER_LOADS ? 2 * S.length() : 1;
    }

    @Override
    public void bf16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n, boolean inPairOrder) {
        int lanes = S.length();
        if (!BUFFER_LOADS) {
            SCALAR.bf16ToFloats(bytes, byteOff, dst, n);
            return;
        }
        byte[] halves = copyOfHalves(bytes, byteOff, n);
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        int i = 0;
        if (inPairOrder) {
            // As dotBf16 reads them: each load of 2·lanes values widens to its even ones, then its odd ones.
            for (; i + 2 * lanes <= n; i += 2 * lanes) {
                IntVector pairs = IntVector.fromByteArray(INTS, halves, 2 * i, le);
                pairs.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, i);
                pairs.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().intoArray(dst, i + lanes);
            }
        }
        for (; i + lanes <= n; i += lanes) {
            // Sign extension fills the bits above each 16-bit value; the shift pushes them out.
            ShortVector h = ShortVector.fromByteArray(HALF, halves, 2 * i, le);
            ((IntVector) h.convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, i);
        }
        for (; i < n; i++) {
            dst[i] = DType.bf16ToFloat(bytes.getShort(byteOff + 2 * i));
        }
    }

    /** Per thread: the 16-bit values of a block of rows, copied out of the mapped file. */
    private static final ThreadLocal<byte[]> HALVES = ThreadLocal.withInitial(() -> new byte[0]);

    /**
     * n 16-bit values from byteOff, copied into this thread's scratch array. Widening from an array
     * measured twice as fast as widening straight from the mapped buffer (16 against 9 GB/s read):
     * the bulk copy runs at memory speed, and the loop over an array needs no per-load buffer checks.
     */
    private static byte[] copyOfHalves(ByteBuffer bytes, int byteOff, int n) {
        byte[] halves = HALVES.get();
        if (halves.length < 2 * n) {
            halves = new byte[2 * n];
            HALVES.set(halves);
        }
        bytes.get(byteOff, halves, 0, 2 * n);
        return halves;
    }

    /** 2¹¹²: moves a half's exponent, shifted into a float's place, from bias 15 to bias 127 (subnormals included). */
    private static final float HALF_EXPONENT_SHIFT = 0x1p112f;
    /** A half's exponent-and-mantissa bits shifted by 13 at or above this are infinities and NaNs. */
    private static final int HALF_INFINITY_BITS = 0x7C00 << 13;

    @Override
    public float dotF16(ByteBuffer bytes, int byteOff, float[] xOrdered, int n) {
        int lanes = S.length(), run = 2 * lanes;
        if (n < run || !BUFFER_LOADS) {
            return SCALAR.dotF16(bytes, byteOff, xOrdered, n);
        }
        // As dotBf16: int lanes hold (odd << 16 | even) pairs of halves, and x is stored to match.
        // The widening, not memory, bounds this loop, so one load per pass is enough.
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        FloatVector acc0 = FloatVector.zero(S), acc1 = FloatVector.zero(S);
        int i = 0;
        for (; i + run <= n; i += run) {
            IntVector pairs = IntVector.fromByteBuffer(INTS, bytes, byteOff + 2 * i, le);
            acc0 = halvesToFloats(pairs.and(0xFFFF)).fma(FloatVector.fromArray(S, xOrdered, i), acc0);
            acc1 = halvesToFloats(pairs.lanewise(VectorOperators.LSHR, 16)).fma(FloatVector.fromArray(S, xOrdered, i + lanes), acc1);
        }
        float s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += DType.halfToFloat(bytes.getShort(byteOff + 2 * i)) * xOrdered[i];
        }
        return s;
    }

    @Override
    public void f16ToFloats(ByteBuffer bytes, int byteOff, float[] dst, int n, boolean inPairOrder) {
        int lanes = S.length();
        if (!BUFFER_LOADS) {
            SCALAR.f16ToFloats(bytes, byteOff, dst, n);
            return;
        }
        byte[] halves = copyOfHalves(bytes, byteOff, n);
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        int i = 0;
        if (inPairOrder) {
            for (; i + 2 * lanes <= n; i += 2 * lanes) {
                IntVector pairs = IntVector.fromByteArray(INTS, halves, 2 * i, le);
                halvesToFloats(pairs.and(0xFFFF)).intoArray(dst, i);
                halvesToFloats(pairs.lanewise(VectorOperators.LSHR, 16)).intoArray(dst, i + lanes);
            }
        }
        for (; i + lanes <= n; i += lanes) {
            ShortVector h = ShortVector.fromByteArray(HALF, halves, 2 * i, le);
            halvesToFloats(((IntVector) h.convertShape(VectorOperators.S2I, INTS, 0)).and(0xFFFF)).intoArray(dst, i);
        }
        for (; i < n; i++) {
            dst[i] = DType.halfToFloat(bytes.getShort(byteOff + 2 * i));
        }
    }

    /**
     * IEEE halves (one in the low 16 bits of each int lane) as floats: (bits & 0x7FFF) << 13 read
     * as a float times 2¹¹², which is exact for normal and subnormal halves; infinities and NaNs
     * get the all-ones exponent instead; then the sign. Small enough for C2 to inline into the
     * short loops above (measured), so the vectors are not boxed.
     */
    private static FloatVector halvesToFloats(IntVector halves) {
        IntVector magnitude = halves.and(0x7FFF).lanewise(VectorOperators.LSHL, 13);
        return magnitude.reinterpretAsFloats().mul(HALF_EXPONENT_SHIFT).reinterpretAsInts()
                .blend(magnitude.or(0x70000000), magnitude.compare(VectorOperators.GE, HALF_INFINITY_BITS))
                .or(halves.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    @Override
    public void dotF32Rows(ByteBuffer bytes, int byteOff, int rowBytes, int rows, float[] x, int n, float[] out, int outOff) {
        int lanes = S.length();
        if (n < 4 * lanes || !BUFFER_LOADS) {
            SCALAR.dotF32Rows(bytes, byteOff, rowBytes, rows, x, n, out, outOff);
            return;
        }
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        for (int r = 0; r < rows; r++) {
            int row = byteOff + r * rowBytes;
            FloatVector acc0 = FloatVector.zero(S), acc1 = FloatVector.zero(S), acc2 = FloatVector.zero(S), acc3 = FloatVector.zero(S);
            int i = 0;
            // Eight loads in flight per pass: this loop streams weights from memory, and more
            // outstanding loads per core measured 5–15 % more bandwidth than four.
            for (; i + 8 * lanes <= n; i += 8 * lanes) {
                int at = row + 4 * i;
                acc0 = FloatVector.fromByteBuffer(S, bytes, at, le).fma(FloatVector.fromArray(S, x, i), acc0);
                acc1 = FloatVector.fromByteBuffer(S, bytes, at + 4 * lanes, le).fma(FloatVector.fromArray(S, x, i + lanes), acc1);
                acc2 = FloatVector.fromByteBuffer(S, bytes, at + 8 * lanes, le).fma(FloatVector.fromArray(S, x, i + 2 * lanes), acc2);
                acc3 = FloatVector.fromByteBuffer(S, bytes, at + 12 * lanes, le).fma(FloatVector.fromArray(S, x, i + 3 * lanes), acc3);
                acc0 = FloatVector.fromByteBuffer(S, bytes, at + 16 * lanes, le).fma(FloatVector.fromArray(S, x, i + 4 * lanes), acc0);
                acc1 = FloatVector.fromByteBuffer(S, bytes, at + 20 * lanes, le).fma(FloatVector.fromArray(S, x, i + 5 * lanes), acc1);
                acc2 = FloatVector.fromByteBuffer(S, bytes, at + 24 * lanes, le).fma(FloatVector.fromArray(S, x, i + 6 * lanes), acc2);
                acc3 = FloatVector.fromByteBuffer(S, bytes, at + 28 * lanes, le).fma(FloatVector.fromArray(S, x, i + 7 * lanes), acc3);
            }
            for (; i + lanes <= n; i += lanes) {
                acc0 = FloatVector.fromByteBuffer(S, bytes, row + 4 * i, le).fma(FloatVector.fromArray(S, x, i), acc0);
            }
            float s = acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
            for (; i < n; i++) {
                s += bytes.getFloat(row + 4 * i) * x[i];
            }
            out[outOff + r] = s;
        }
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

    @Override
    public void dotColumns(float[] q, int qOff, float[] kT, int kOff, int stride, int dims, float[] out, int outOff, int n) {
        int lanes = S.length();
        int o = 0;
        // Two position vectors × four interleaved runs of dimensions: eight independent FMA chains,
        // enough to keep both FMA units busy through their latency.
        for (; o + 2 * lanes <= n; o += 2 * lanes) {
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
            FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S), e0 = FloatVector.zero(S), e1 = FloatVector.zero(S);
            int d = 0;
            for (; d + 3 < dims; d += 4) {
                int row = kOff + d * stride + o;
                FloatVector qa = FloatVector.broadcast(S, q[qOff + d]), qb = FloatVector.broadcast(S, q[qOff + d + 1]);
                FloatVector qc = FloatVector.broadcast(S, q[qOff + d + 2]), qe = FloatVector.broadcast(S, q[qOff + d + 3]);
                a0 = FloatVector.fromArray(S, kT, row).fma(qa, a0);
                a1 = FloatVector.fromArray(S, kT, row + lanes).fma(qa, a1);
                b0 = FloatVector.fromArray(S, kT, row + stride).fma(qb, b0);
                b1 = FloatVector.fromArray(S, kT, row + stride + lanes).fma(qb, b1);
                c0 = FloatVector.fromArray(S, kT, row + 2 * stride).fma(qc, c0);
                c1 = FloatVector.fromArray(S, kT, row + 2 * stride + lanes).fma(qc, c1);
                e0 = FloatVector.fromArray(S, kT, row + 3 * stride).fma(qe, e0);
                e1 = FloatVector.fromArray(S, kT, row + 3 * stride + lanes).fma(qe, e1);
            }
            for (; d < dims; d++) {
                int row = kOff + d * stride + o;
                FloatVector qa = FloatVector.broadcast(S, q[qOff + d]);
                a0 = FloatVector.fromArray(S, kT, row).fma(qa, a0);
                a1 = FloatVector.fromArray(S, kT, row + lanes).fma(qa, a1);
            }
            a0.add(b0).add(c0.add(e0)).intoArray(out, outOff + o);
            a1.add(b1).add(c1.add(e1)).intoArray(out, outOff + o + lanes);
        }
        for (; o + lanes <= n; o += lanes) {
            FloatVector a0 = FloatVector.zero(S), b0 = FloatVector.zero(S);
            int d = 0;
            for (; d + 1 < dims; d += 2) {
                a0 = FloatVector.fromArray(S, kT, kOff + d * stride + o).fma(FloatVector.broadcast(S, q[qOff + d]), a0);
                b0 = FloatVector.fromArray(S, kT, kOff + (d + 1) * stride + o).fma(FloatVector.broadcast(S, q[qOff + d + 1]), b0);
            }
            if (d < dims) {
                a0 = FloatVector.fromArray(S, kT, kOff + d * stride + o).fma(FloatVector.broadcast(S, q[qOff + d]), a0);
            }
            a0.add(b0).intoArray(out, outOff + o);
        }
        if (o < n) {
            SCALAR.dotColumns(q, qOff, kT, kOff + o, stride, dims, out, outOff + o, n - o);
        }
    }

    @Override
    public void addWeightedRows(float[] p, int pOff, int n, float[] v, int vOff, int stride, int dims, float[] out, int outOff) {
        int lanes = S.length();
        int c = 0;
        // Four column vectors × even/odd positions: eight independent FMA chains.
        for (; c + 4 * lanes <= dims; c += 4 * lanes) {
            int at = outOff + c;
            FloatVector a0 = FloatVector.fromArray(S, out, at), a1 = FloatVector.fromArray(S, out, at + lanes);
            FloatVector a2 = FloatVector.fromArray(S, out, at + 2 * lanes), a3 = FloatVector.fromArray(S, out, at + 3 * lanes);
            FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S), b2 = FloatVector.zero(S), b3 = FloatVector.zero(S);
            int o = 0;
            for (; o + 1 < n; o += 2) {
                int row = vOff + o * stride + c;
                FloatVector pa = FloatVector.broadcast(S, p[pOff + o]), pb = FloatVector.broadcast(S, p[pOff + o + 1]);
                a0 = FloatVector.fromArray(S, v, row).fma(pa, a0);
                a1 = FloatVector.fromArray(S, v, row + lanes).fma(pa, a1);
                a2 = FloatVector.fromArray(S, v, row + 2 * lanes).fma(pa, a2);
                a3 = FloatVector.fromArray(S, v, row + 3 * lanes).fma(pa, a3);
                b0 = FloatVector.fromArray(S, v, row + stride).fma(pb, b0);
                b1 = FloatVector.fromArray(S, v, row + stride + lanes).fma(pb, b1);
                b2 = FloatVector.fromArray(S, v, row + stride + 2 * lanes).fma(pb, b2);
                b3 = FloatVector.fromArray(S, v, row + stride + 3 * lanes).fma(pb, b3);
            }
            if (o < n) {
                int row = vOff + o * stride + c;
                FloatVector pa = FloatVector.broadcast(S, p[pOff + o]);
                a0 = FloatVector.fromArray(S, v, row).fma(pa, a0);
                a1 = FloatVector.fromArray(S, v, row + lanes).fma(pa, a1);
                a2 = FloatVector.fromArray(S, v, row + 2 * lanes).fma(pa, a2);
                a3 = FloatVector.fromArray(S, v, row + 3 * lanes).fma(pa, a3);
            }
            a0.add(b0).intoArray(out, at);
            a1.add(b1).intoArray(out, at + lanes);
            a2.add(b2).intoArray(out, at + 2 * lanes);
            a3.add(b3).intoArray(out, at + 3 * lanes);
        }
        for (; c + lanes <= dims; c += lanes) {
            // Two accumulators, alternating positions, halve the FMA dependency chain.
            FloatVector acc0 = FloatVector.fromArray(S, out, outOff + c), acc1 = FloatVector.zero(S);
            int o = 0;
            for (; o + 1 < n; o += 2) {
                int row = vOff + o * stride + c;
                acc0 = FloatVector.fromArray(S, v, row).fma(FloatVector.broadcast(S, p[pOff + o]), acc0);
                acc1 = FloatVector.fromArray(S, v, row + stride).fma(FloatVector.broadcast(S, p[pOff + o + 1]), acc1);
            }
            if (o < n) {
                acc0 = FloatVector.fromArray(S, v, vOff + o * stride + c).fma(FloatVector.broadcast(S, p[pOff + o]), acc0);
            }
            acc0.add(acc1).intoArray(out, outOff + c);
        }
        if (c < dims) {
            // Dimensions past the last whole vector (head sizes that are not a multiple of the lanes).
            for (int o = 0; o < n; o++) {
                float po = p[pOff + o];
                int row = vOff + o * stride;
                for (int d = c; d < dims; d++) {
                    out[outOff + d] += po * v[row + d];
                }
            }
        }
    }

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693145751953125f;
    private static final float LN2_LO = 1.428606765330187045e-06f;
    /**
     * Adding 1.5 · 2²³ to a float of magnitude below 2²² rounds it to an integer n held in the low
     * mantissa bits: the sum's bits are 0x4B400000 + n.
     */
    private static final float ROUND_MAGIC = 12582912f;

    /**
     * e^x on every lane for x ≤ 88; below −87.3, e^−87.3 (about 1.2e−38, where {@link FastExp#exp}
     * gives 0: both vanish beside the 1 a softmax sum always holds). {@link FastExp#exp}'s range
     * reduction and polynomial, but rounding n to even at ties, so results can differ from it in the
     * last bit. 2ⁿ is applied by adding n to the exponent bits of the polynomial, taken from the bits
     * of the rounding sum, not by a float-to-int conversion, which the Java 17 Vector API does not
     * compile to a SIMD instruction; with x ≥ −87.3 the polynomial is at least 1 when n is −126, so the
     * sum stays a normal float. This was 1.4× faster than building 2ⁿ and multiplying, with
     * an underflow mask (microbenchmark, one core). Callers keep x ≤ 88.
     */
    private static FloatVector exp(FloatVector x) {
        x = x.max(-87.3f);
        FloatVector rounded = x.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND_MAGIC));
        FloatVector n = rounded.sub(ROUND_MAGIC);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), x).sub(n.mul(LN2_LO));
        FloatVector p = r.mul(1f / 5040).add(1f / 720);
        p = p.fma(r, FloatVector.broadcast(S, 1f / 120));
        p = p.fma(r, FloatVector.broadcast(S, 1f / 24));
        p = p.fma(r, FloatVector.broadcast(S, 1f / 6));
        p = p.fma(r, FloatVector.broadcast(S, 0.5f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        // The rounding sum's bits are 0x4B400000 + n; shifted left by 23, the 0x4B400000 overflows away.
        IntVector nInExponent = ((IntVector) rounded.reinterpretAsInts()).lanewise(VectorOperators.LSHL, 23);
        return ((IntVector) p.reinterpretAsInts()).add(nInExponent).reinterpretAsFloats();
    }

    @Override
    public void swiglu(float[] gate, float[] up, int n) {
        int lanes = S.length();
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            FloatVector g = FloatVector.fromArray(S, gate, i);
            // e^−g, clamped below the float overflow (silu is then g / 1.6e38, zero to within a float).
            FloatVector e = exp(g.neg().min(88f));
            g.div(e.add(1f)).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
        }
        for (; i < n; i++) {
            float g = gate[i];
            gate[i] = g / (1f + FastExp.exp(Math.min(-g, 88f))) * up[i];
        }
    }

    /**
     * AVX-512 (32 vector registers, whatever width S is): the eight-query kernels' sixteen
     * accumulators fit. With AVX2's 16 they spill: on this machine with -XX:UseAVX=2 the eight-query
     * value kernel ran at 15–22 GFLOP/s against 38–53 for the four-query one.
     */
    private static final boolean THIRTY_TWO_REGISTERS = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512;

    @Override
    public boolean sharesLoadsAcrossEightQueries() {
        return THIRTY_TWO_REGISTERS;
    }

    /**
     * Eight queries × two vectors of positions: sixteen accumulators, two loads of keys and eight
     * broadcasts per sixteen FMAs (four queries: six per eight); then one vector of positions; then
     * the rest one query at a time. Alone on one core, with the keys in cache (heads of 64, blocks of
     * 16): 65–87 GFLOP/s against 50–55 for the four-query kernel.
     */
    @Override
    public void dotColumns8(float[][] q, int first, int qOff, float[] kT, int kOff, int stride, int dims,
            float[] out, int outOff, int outStride, int n) {
        int lanes = S.length();
        float[] q0 = q[first], q1 = q[first + 1], q2 = q[first + 2], q3 = q[first + 3];
        float[] q4 = q[first + 4], q5 = q[first + 5], q6 = q[first + 6], q7 = q[first + 7];
        int o = 0;
        for (; o + 2 * lanes <= n; o += 2 * lanes) {
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
            FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S), e0 = FloatVector.zero(S), e1 = FloatVector.zero(S);
            FloatVector f0 = FloatVector.zero(S), f1 = FloatVector.zero(S), g0 = FloatVector.zero(S), g1 = FloatVector.zero(S);
            FloatVector h0 = FloatVector.zero(S), h1 = FloatVector.zero(S), i0 = FloatVector.zero(S), i1 = FloatVector.zero(S);
            for (int d = 0; d < dims; d++) {
                int row = kOff + d * stride + o;
                FloatVector k0 = FloatVector.fromArray(S, kT, row), k1 = FloatVector.fromArray(S, kT, row + lanes);
                FloatVector x = FloatVector.broadcast(S, q0[qOff + d]);
                a0 = k0.fma(x, a0);
                a1 = k1.fma(x, a1);
                x = FloatVector.broadcast(S, q1[qOff + d]);
                b0 = k0.fma(x, b0);
                b1 = k1.fma(x, b1);
                x = FloatVector.broadcast(S, q2[qOff + d]);
                c0 = k0.fma(x, c0);
                c1 = k1.fma(x, c1);
                x = FloatVector.broadcast(S, q3[qOff + d]);
                e0 = k0.fma(x, e0);
                e1 = k1.fma(x, e1);
                x = FloatVector.broadcast(S, q4[qOff + d]);
                f0 = k0.fma(x, f0);
                f1 = k1.fma(x, f1);
                x = FloatVector.broadcast(S, q5[qOff + d]);
                g0 = k0.fma(x, g0);
                g1 = k1.fma(x, g1);
                x = FloatVector.broadcast(S, q6[qOff + d]);
                h0 = k0.fma(x, h0);
                h1 = k1.fma(x, h1);
                x = FloatVector.broadcast(S, q7[qOff + d]);
                i0 = k0.fma(x, i0);
                i1 = k1.fma(x, i1);
            }
            int at = outOff + o;
            a0.intoArray(out, at);
            a1.intoArray(out, at + lanes);
            b0.intoArray(out, at + outStride);
            b1.intoArray(out, at + outStride + lanes);
            c0.intoArray(out, at + 2 * outStride);
            c1.intoArray(out, at + 2 * outStride + lanes);
            e0.intoArray(out, at + 3 * outStride);
            e1.intoArray(out, at + 3 * outStride + lanes);
            f0.intoArray(out, at + 4 * outStride);
            f1.intoArray(out, at + 4 * outStride + lanes);
            g0.intoArray(out, at + 5 * outStride);
            g1.intoArray(out, at + 5 * outStride + lanes);
            h0.intoArray(out, at + 6 * outStride);
            h1.intoArray(out, at + 6 * outStride + lanes);
            i0.intoArray(out, at + 7 * outStride);
            i1.intoArray(out, at + 7 * outStride + lanes);
        }
        for (; o + lanes <= n; o += lanes) {
            FloatVector a = FloatVector.zero(S), b = FloatVector.zero(S), c = FloatVector.zero(S), e = FloatVector.zero(S);
            FloatVector f = FloatVector.zero(S), g = FloatVector.zero(S), h = FloatVector.zero(S), i = FloatVector.zero(S);
            for (int d = 0; d < dims; d++) {
                FloatVector k = FloatVector.fromArray(S, kT, kOff + d * stride + o);
                a = k.fma(FloatVector.broadcast(S, q0[qOff + d]), a);
                b = k.fma(FloatVector.broadcast(S, q1[qOff + d]), b);
                c = k.fma(FloatVector.broadcast(S, q2[qOff + d]), c);
                e = k.fma(FloatVector.broadcast(S, q3[qOff + d]), e);
                f = k.fma(FloatVector.broadcast(S, q4[qOff + d]), f);
                g = k.fma(FloatVector.broadcast(S, q5[qOff + d]), g);
                h = k.fma(FloatVector.broadcast(S, q6[qOff + d]), h);
                i = k.fma(FloatVector.broadcast(S, q7[qOff + d]), i);
            }
            int at = outOff + o;
            a.intoArray(out, at);
            b.intoArray(out, at + outStride);
            c.intoArray(out, at + 2 * outStride);
            e.intoArray(out, at + 3 * outStride);
            f.intoArray(out, at + 4 * outStride);
            g.intoArray(out, at + 5 * outStride);
            h.intoArray(out, at + 6 * outStride);
            i.intoArray(out, at + 7 * outStride);
        }
        if (o < n) {
            for (int t = 0; t < 8; t++) {
                dotColumns(q[first + t], qOff, kT, kOff + o, stride, dims, out, outOff + t * outStride + o, n - o);
            }
        }
    }

    /**
     * Eight outputs × two column vectors: sixteen accumulators, two loads of values and eight
     * broadcasts per sixteen FMAs; then one column vector; then the columns past the last whole
     * vector one output at a time. Alone on one core (heads of 64): 46–53 GFLOP/s against 32–41 for
     * the four-output kernel.
     */
    @Override
    public void addWeightedRows8(float[] p, int pOff, int pStride, int n, float[] v, int vOff, int stride, int dims,
            float[][] out, int first, int outOff) {
        int lanes = S.length();
        float[] o0 = out[first], o1 = out[first + 1], o2 = out[first + 2], o3 = out[first + 3];
        float[] o4 = out[first + 4], o5 = out[first + 5], o6 = out[first + 6], o7 = out[first + 7];
        int c = 0;
        for (; c + 2 * lanes <= dims; c += 2 * lanes) {
            int at = outOff + c;
            FloatVector a0 = FloatVector.fromArray(S, o0, at), a1 = FloatVector.fromArray(S, o0, at + lanes);
            FloatVector b0 = FloatVector.fromArray(S, o1, at), b1 = FloatVector.fromArray(S, o1, at + lanes);
            FloatVector c0 = FloatVector.fromArray(S, o2, at), c1 = FloatVector.fromArray(S, o2, at + lanes);
            FloatVector e0 = FloatVector.fromArray(S, o3, at), e1 = FloatVector.fromArray(S, o3, at + lanes);
            FloatVector f0 = FloatVector.fromArray(S, o4, at), f1 = FloatVector.fromArray(S, o4, at + lanes);
            FloatVector g0 = FloatVector.fromArray(S, o5, at), g1 = FloatVector.fromArray(S, o5, at + lanes);
            FloatVector h0 = FloatVector.fromArray(S, o6, at), h1 = FloatVector.fromArray(S, o6, at + lanes);
            FloatVector i0 = FloatVector.fromArray(S, o7, at), i1 = FloatVector.fromArray(S, o7, at + lanes);
            for (int o = 0; o < n; o++) {
                int row = vOff + o * stride + c, pAt = pOff + o;
                FloatVector v0 = FloatVector.fromArray(S, v, row), v1 = FloatVector.fromArray(S, v, row + lanes);
                FloatVector x = FloatVector.broadcast(S, p[pAt]);
                a0 = v0.fma(x, a0);
                a1 = v1.fma(x, a1);
                x = FloatVector.broadcast(S, p[pAt + pStride]);
                b0 = v0.fma(x, b0);
                b1 = v1.fma(x, b1);
                x = FloatVector.broadcast(S, p[pAt + 2 * pStride]);
                c0 = v0.fma(x, c0);
                c1 = v1.fma(x, c1);
                x = FloatVector.broadcast(S, p[pAt + 3 * pStride]);
                e0 = v0.fma(x, e0);
                e1 = v1.fma(x, e1);
                x = FloatVector.broadcast(S, p[pAt + 4 * pStride]);
                f0 = v0.fma(x, f0);
                f1 = v1.fma(x, f1);
                x = FloatVector.broadcast(S, p[pAt + 5 * pStride]);
                g0 = v0.fma(x, g0);
                g1 = v1.fma(x, g1);
                x = FloatVector.broadcast(S, p[pAt + 6 * pStride]);
                h0 = v0.fma(x, h0);
                h1 = v1.fma(x, h1);
                x = FloatVector.broadcast(S, p[pAt + 7 * pStride]);
                i0 = v0.fma(x, i0);
                i1 = v1.fma(x, i1);
            }
            a0.intoArray(o0, at);
            a1.intoArray(o0, at + lanes);
            b0.intoArray(o1, at);
            b1.intoArray(o1, at + lanes);
            c0.intoArray(o2, at);
            c1.intoArray(o2, at + lanes);
            e0.intoArray(o3, at);
            e1.intoArray(o3, at + lanes);
            f0.intoArray(o4, at);
            f1.intoArray(o4, at + lanes);
            g0.intoArray(o5, at);
            g1.intoArray(o5, at + lanes);
            h0.intoArray(o6, at);
            h1.intoArray(o6, at + lanes);
            i0.intoArray(o7, at);
            i1.intoArray(o7, at + lanes);
        }
        for (; c + lanes <= dims; c += lanes) {
            int at = outOff + c;
            FloatVector a = FloatVector.fromArray(S, o0, at), b = FloatVector.fromArray(S, o1, at);
            FloatVector cc = FloatVector.fromArray(S, o2, at), e = FloatVector.fromArray(S, o3, at);
            FloatVector f = FloatVector.fromArray(S, o4, at), g = FloatVector.fromArray(S, o5, at);
            FloatVector h = FloatVector.fromArray(S, o6, at), i = FloatVector.fromArray(S, o7, at);
            for (int o = 0; o < n; o++) {
                FloatVector row = FloatVector.fromArray(S, v, vOff + o * stride + c);
                int pAt = pOff + o;
                a = row.fma(FloatVector.broadcast(S, p[pAt]), a);
                b = row.fma(FloatVector.broadcast(S, p[pAt + pStride]), b);
                cc = row.fma(FloatVector.broadcast(S, p[pAt + 2 * pStride]), cc);
                e = row.fma(FloatVector.broadcast(S, p[pAt + 3 * pStride]), e);
                f = row.fma(FloatVector.broadcast(S, p[pAt + 4 * pStride]), f);
                g = row.fma(FloatVector.broadcast(S, p[pAt + 5 * pStride]), g);
                h = row.fma(FloatVector.broadcast(S, p[pAt + 6 * pStride]), h);
                i = row.fma(FloatVector.broadcast(S, p[pAt + 7 * pStride]), i);
            }
            a.intoArray(o0, at);
            b.intoArray(o1, at);
            cc.intoArray(o2, at);
            e.intoArray(o3, at);
            f.intoArray(o4, at);
            g.intoArray(o5, at);
            h.intoArray(o6, at);
            i.intoArray(o7, at);
        }
        if (c < dims) {
            for (int t = 0; t < 8; t++) {
                addWeightedRows(p, pOff + t * pStride, n, v, vOff + c, stride, dims - c, out[first + t], outOff + c);
            }
        }
    }

    /**
     * Small heads (under four vectors, where {@link #dotColumns} has chains of a few FMAs and a
     * call per head costs more than its arithmetic): four heads × two vectors of positions, eight
     * chains; the positions past the last two vectors and the heads past the last four one head at a time.
     * With GQA groups of an even size, heads h and h + 1 share their KV head's key loads: stories260k
     * (groups of 2), 8 sequences at position 128 on one thread, 0.89 of the step time (alternating
     * in-process runs; the scores kernel alone 0.76, the values kernel 0.60).
     */
    @Override
    public void dotColumnsHeads(float[] q, int qOff, float[] kT, int kOff, int stride, int kvStride, int dims, int heads, int group,
            float[] out, int outOff, int outStride, int n) {
        int lanes = S.length();
        if (dims >= 4 * lanes) {
            super.dotColumnsHeads(q, qOff, kT, kOff, stride, kvStride, dims, heads, group, out, outOff, outStride, n);
            return;
        }
        int h = 0, whole = n - n % (2 * lanes);
        for (; h + 4 <= heads; h += 4) {
            int k0 = kOff + (h / group) * kvStride, k1 = kOff + ((h + 1) / group) * kvStride;
            int k2 = kOff + ((h + 2) / group) * kvStride, k3 = kOff + ((h + 3) / group) * kvStride;
            int q0 = qOff + h * dims, q1 = q0 + dims, q2 = q1 + dims, q3 = q2 + dims;
            if (group % 2 == 0) {
                // Heads h, h + 1 read one KV head and h + 2, h + 3 another.
                pairedDotColumns(q, q0, q1, q2, q3, kT, k0, k2, stride, dims, whole, out, outOff + h * outStride, outStride);
                continue;
            }
            for (int o = 0; o < whole; o += 2 * lanes) {
                FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
                FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S), e0 = FloatVector.zero(S), e1 = FloatVector.zero(S);
                for (int d = 0; d < dims; d++) {
                    int row = d * stride + o;
                    FloatVector x = FloatVector.broadcast(S, q[q0 + d]);
                    a0 = FloatVector.fromArray(S, kT, k0 + row).fma(x, a0);
                    a1 = FloatVector.fromArray(S, kT, k0 + row + lanes).fma(x, a1);
                    x = FloatVector.broadcast(S, q[q1 + d]);
                    b0 = FloatVector.fromArray(S, kT, k1 + row).fma(x, b0);
                    b1 = FloatVector.fromArray(S, kT, k1 + row + lanes).fma(x, b1);
                    x = FloatVector.broadcast(S, q[q2 + d]);
                    c0 = FloatVector.fromArray(S, kT, k2 + row).fma(x, c0);
                    c1 = FloatVector.fromArray(S, kT, k2 + row + lanes).fma(x, c1);
                    x = FloatVector.broadcast(S, q[q3 + d]);
                    e0 = FloatVector.fromArray(S, kT, k3 + row).fma(x, e0);
                    e1 = FloatVector.fromArray(S, kT, k3 + row + lanes).fma(x, e1);
                }
                int at = outOff + h * outStride + o;
                a0.intoArray(out, at);
                a1.intoArray(out, at + lanes);
                b0.intoArray(out, at + outStride);
                b1.intoArray(out, at + outStride + lanes);
                c0.intoArray(out, at + 2 * outStride);
                c1.intoArray(out, at + 2 * outStride + lanes);
                e0.intoArray(out, at + 3 * outStride);
                e1.intoArray(out, at + 3 * outStride + lanes);
            }
        }
        if (whole < n) {
            for (int k = 0; k < h; k++) {
                dotColumns(q, qOff + k * dims, kT, kOff + (k / group) * kvStride + whole, stride, dims, out, outOff + k * outStride + whole, n - whole);
            }
        }
        for (; h < heads; h++) {
            dotColumns(q, qOff + h * dims, kT, kOff + (h / group) * kvStride, stride, dims, out, outOff + h * outStride, n);
        }
    }

    /**
     * {@link #dotColumnsHeads}'s four heads from h when heads h, h + 1 read the KV head at k0 and
     * h + 2, h + 3 the one at k2: each load of keys serves two heads. Positions [0, whole).
     */
    private static void pairedDotColumns(float[] q, int q0, int q1, int q2, int q3, float[] kT, int k0, int k2, int stride, int dims,
            int whole, float[] out, int outOff, int outStride) {
        int lanes = S.length();
        for (int o = 0; o < whole; o += 2 * lanes) {
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
            FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S), e0 = FloatVector.zero(S), e1 = FloatVector.zero(S);
            for (int d = 0; d < dims; d++) {
                int row = d * stride + o;
                FloatVector lo = FloatVector.fromArray(S, kT, k0 + row), hi = FloatVector.fromArray(S, kT, k0 + row + lanes);
                FloatVector x = FloatVector.broadcast(S, q[q0 + d]);
                a0 = lo.fma(x, a0);
                a1 = hi.fma(x, a1);
                x = FloatVector.broadcast(S, q[q1 + d]);
                b0 = lo.fma(x, b0);
                b1 = hi.fma(x, b1);
                lo = FloatVector.fromArray(S, kT, k2 + row);
                hi = FloatVector.fromArray(S, kT, k2 + row + lanes);
                x = FloatVector.broadcast(S, q[q2 + d]);
                c0 = lo.fma(x, c0);
                c1 = hi.fma(x, c1);
                x = FloatVector.broadcast(S, q[q3 + d]);
                e0 = lo.fma(x, e0);
                e1 = hi.fma(x, e1);
            }
            int at = outOff + o;
            a0.intoArray(out, at);
            a1.intoArray(out, at + lanes);
            b0.intoArray(out, at + outStride);
            b1.intoArray(out, at + outStride + lanes);
            c0.intoArray(out, at + 2 * outStride);
            c1.intoArray(out, at + 2 * outStride + lanes);
            e0.intoArray(out, at + 3 * outStride);
            e1.intoArray(out, at + 3 * outStride + lanes);
        }
    }

    /**
     * Small heads (under four vectors, where {@link #addWeightedRows} has fewer than eight FMA
     * chains): four heads × even/odd positions, eight chains, for each vector of columns; the
     * columns past the last whole vector and the heads past the last four one at a time. Even GQA
     * groups share each load of values between two heads ({@link #pairedWeightedRows}).
     */
    @Override
    public void addWeightedRowsHeads(float[] p, int pOff, int pStride, int n, float[] v, int vOff, int stride, int dims,
            int heads, int group, float[] out, int outOff) {
        int lanes = S.length();
        if (dims >= 4 * lanes) {
            super.addWeightedRowsHeads(p, pOff, pStride, n, v, vOff, stride, dims, heads, group, out, outOff);
            return;
        }
        int h = 0, whole = dims - dims % lanes;
        for (; h + 4 <= heads; h += 4) {
            int v0 = vOff + (h / group) * dims, v1 = vOff + ((h + 1) / group) * dims;
            int v2 = vOff + ((h + 2) / group) * dims, v3 = vOff + ((h + 3) / group) * dims;
            int p0 = pOff + h * pStride, p1 = p0 + pStride, p2 = p1 + pStride, p3 = p2 + pStride;
            if (group % 2 == 0) {
                // Heads h, h + 1 read one KV head and h + 2, h + 3 another.
                pairedWeightedRows(p, p0, p1, p2, p3, n, v, v0, v2, stride, dims, whole, out, outOff + h * dims);
            } else {
                for (int c = 0; c < whole; c += lanes) {
                    int at = outOff + h * dims + c;
                    FloatVector a0 = FloatVector.fromArray(S, out, at), a1 = FloatVector.fromArray(S, out, at + dims);
                    FloatVector a2 = FloatVector.fromArray(S, out, at + 2 * dims), a3 = FloatVector.fromArray(S, out, at + 3 * dims);
                    FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S), b2 = FloatVector.zero(S), b3 = FloatVector.zero(S);
                    int o = 0;
                    for (; o + 1 < n; o += 2) {
                        int row = o * stride + c, next = row + stride;
                        a0 = FloatVector.fromArray(S, v, v0 + row).fma(FloatVector.broadcast(S, p[p0 + o]), a0);
                        a1 = FloatVector.fromArray(S, v, v1 + row).fma(FloatVector.broadcast(S, p[p1 + o]), a1);
                        a2 = FloatVector.fromArray(S, v, v2 + row).fma(FloatVector.broadcast(S, p[p2 + o]), a2);
                        a3 = FloatVector.fromArray(S, v, v3 + row).fma(FloatVector.broadcast(S, p[p3 + o]), a3);
                        b0 = FloatVector.fromArray(S, v, v0 + next).fma(FloatVector.broadcast(S, p[p0 + o + 1]), b0);
                        b1 = FloatVector.fromArray(S, v, v1 + next).fma(FloatVector.broadcast(S, p[p1 + o + 1]), b1);
                        b2 = FloatVector.fromArray(S, v, v2 + next).fma(FloatVector.broadcast(S, p[p2 + o + 1]), b2);
                        b3 = FloatVector.fromArray(S, v, v3 + next).fma(FloatVector.broadcast(S, p[p3 + o + 1]), b3);
                    }
                    if (o < n) {
                        int row = o * stride + c;
                        a0 = FloatVector.fromArray(S, v, v0 + row).fma(FloatVector.broadcast(S, p[p0 + o]), a0);
                        a1 = FloatVector.fromArray(S, v, v1 + row).fma(FloatVector.broadcast(S, p[p1 + o]), a1);
                        a2 = FloatVector.fromArray(S, v, v2 + row).fma(FloatVector.broadcast(S, p[p2 + o]), a2);
                        a3 = FloatVector.fromArray(S, v, v3 + row).fma(FloatVector.broadcast(S, p[p3 + o]), a3);
                    }
                    a0.add(b0).intoArray(out, at);
                    a1.add(b1).intoArray(out, at + dims);
                    a2.add(b2).intoArray(out, at + 2 * dims);
                    a3.add(b3).intoArray(out, at + 3 * dims);
                }
            }
            if (whole < dims) {
                for (int k = h; k < h + 4; k++) {
                    SCALAR.addWeightedRows(p, pOff + k * pStride, n, v, vOff + (k / group) * dims + whole, stride, dims - whole, out, outOff + k * dims + whole);
                }
            }
        }
        for (; h < heads; h++) {
            addWeightedRows(p, pOff + h * pStride, n, v, vOff + (h / group) * dims, stride, dims, out, outOff + h * dims);
        }
    }

    /**
     * {@link #addWeightedRowsHeads}'s four heads when heads h, h + 1 read the KV head at v0 and
     * h + 2, h + 3 the one at v2: each load of values serves two heads. Columns [0, whole).
     */
    private static void pairedWeightedRows(float[] p, int p0, int p1, int p2, int p3, int n, float[] v, int v0, int v2, int stride,
            int dims, int whole, float[] out, int at0) {
        int lanes = S.length();
        for (int c = 0; c < whole; c += lanes) {
            int at = at0 + c;
            FloatVector a0 = FloatVector.fromArray(S, out, at), a1 = FloatVector.fromArray(S, out, at + dims);
            FloatVector a2 = FloatVector.fromArray(S, out, at + 2 * dims), a3 = FloatVector.fromArray(S, out, at + 3 * dims);
            FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S), b2 = FloatVector.zero(S), b3 = FloatVector.zero(S);
            int o = 0;
            for (; o + 1 < n; o += 2) {
                int row = o * stride + c, next = row + stride;
                FloatVector x = FloatVector.fromArray(S, v, v0 + row), y = FloatVector.fromArray(S, v, v2 + row);
                a0 = x.fma(FloatVector.broadcast(S, p[p0 + o]), a0);
                a1 = x.fma(FloatVector.broadcast(S, p[p1 + o]), a1);
                a2 = y.fma(FloatVector.broadcast(S, p[p2 + o]), a2);
                a3 = y.fma(FloatVector.broadcast(S, p[p3 + o]), a3);
                x = FloatVector.fromArray(S, v, v0 + next);
                y = FloatVector.fromArray(S, v, v2 + next);
                b0 = x.fma(FloatVector.broadcast(S, p[p0 + o + 1]), b0);
                b1 = x.fma(FloatVector.broadcast(S, p[p1 + o + 1]), b1);
                b2 = y.fma(FloatVector.broadcast(S, p[p2 + o + 1]), b2);
                b3 = y.fma(FloatVector.broadcast(S, p[p3 + o + 1]), b3);
            }
            if (o < n) {
                int row = o * stride + c;
                FloatVector x = FloatVector.fromArray(S, v, v0 + row), y = FloatVector.fromArray(S, v, v2 + row);
                a0 = x.fma(FloatVector.broadcast(S, p[p0 + o]), a0);
                a1 = x.fma(FloatVector.broadcast(S, p[p1 + o]), a1);
                a2 = y.fma(FloatVector.broadcast(S, p[p2 + o]), a2);
                a3 = y.fma(FloatVector.broadcast(S, p[p3 + o]), a3);
            }
            a0.add(b0).intoArray(out, at);
            a1.add(b1).intoArray(out, at + dims);
            a2.add(b2).intoArray(out, at + 2 * dims);
            a3.add(b3).intoArray(out, at + 3 * dims);
        }
    }

    /**
     * Four queries × two vectors of positions: eight accumulators, two loads of keys and four
     * broadcasts per eight FMAs (one query at a time needs twelve loads for eight); then one vector
     * of positions, then the rest one query at a time.
     */
    @Override
    public void dotColumns4(float[] q0, float[] q1, float[] q2, float[] q3, int qOff, float[] kT, int kOff, int stride, int dims,
            float[] out, int outOff, int outStride, int n) {
        int lanes = S.length();
        int o = 0;
        for (; o + 2 * lanes <= n; o += 2 * lanes) {
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
            FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S), e0 = FloatVector.zero(S), e1 = FloatVector.zero(S);
            for (int d = 0; d < dims; d++) {
                int row = kOff + d * stride + o;
                FloatVector k0 = FloatVector.fromArray(S, kT, row), k1 = FloatVector.fromArray(S, kT, row + lanes);
                FloatVector x = FloatVector.broadcast(S, q0[qOff + d]);
                a0 = k0.fma(x, a0);
                a1 = k1.fma(x, a1);
                x = FloatVector.broadcast(S, q1[qOff + d]);
                b0 = k0.fma(x, b0);
                b1 = k1.fma(x, b1);
                x = FloatVector.broadcast(S, q2[qOff + d]);
                c0 = k0.fma(x, c0);
                c1 = k1.fma(x, c1);
                x = FloatVector.broadcast(S, q3[qOff + d]);
                e0 = k0.fma(x, e0);
                e1 = k1.fma(x, e1);
            }
            int at = outOff + o;
            a0.intoArray(out, at);
            a1.intoArray(out, at + lanes);
            b0.intoArray(out, at + outStride);
            b1.intoArray(out, at + outStride + lanes);
            c0.intoArray(out, at + 2 * outStride);
            c1.intoArray(out, at + 2 * outStride + lanes);
            e0.intoArray(out, at + 3 * outStride);
            e1.intoArray(out, at + 3 * outStride + lanes);
        }
        for (; o + lanes <= n; o += lanes) {
            // One vector of positions (a 16-position block at 512 bits): four accumulators.
            FloatVector a0 = FloatVector.zero(S), b0 = FloatVector.zero(S), c0 = FloatVector.zero(S), e0 = FloatVector.zero(S);
            for (int d = 0; d < dims; d++) {
                FloatVector k0 = FloatVector.fromArray(S, kT, kOff + d * stride + o);
                a0 = k0.fma(FloatVector.broadcast(S, q0[qOff + d]), a0);
                b0 = k0.fma(FloatVector.broadcast(S, q1[qOff + d]), b0);
                c0 = k0.fma(FloatVector.broadcast(S, q2[qOff + d]), c0);
                e0 = k0.fma(FloatVector.broadcast(S, q3[qOff + d]), e0);
            }
            int at = outOff + o;
            a0.intoArray(out, at);
            b0.intoArray(out, at + outStride);
            c0.intoArray(out, at + 2 * outStride);
            e0.intoArray(out, at + 3 * outStride);
        }
        if (o < n) {
            dotColumns(q0, qOff, kT, kOff + o, stride, dims, out, outOff + o, n - o);
            dotColumns(q1, qOff, kT, kOff + o, stride, dims, out, outOff + outStride + o, n - o);
            dotColumns(q2, qOff, kT, kOff + o, stride, dims, out, outOff + 2 * outStride + o, n - o);
            dotColumns(q3, qOff, kT, kOff + o, stride, dims, out, outOff + 3 * outStride + o, n - o);
        }
    }

    /**
     * Four queries × two vectors of dimensions: eight accumulators, two loads of values and four
     * broadcasts per eight FMAs. Dimensions past the whole pairs of vectors go to the one-query kernel.
     */
    @Override
    public void addWeightedRows4(float[] p, int pOff, int pStride, int n, float[] v, int vOff, int stride, int dims,
            float[] out0, float[] out1, float[] out2, float[] out3, int outOff) {
        int lanes = S.length();
        int c = 0;
        for (; c + 2 * lanes <= dims; c += 2 * lanes) {
            int at = outOff + c;
            FloatVector a0 = FloatVector.fromArray(S, out0, at), a1 = FloatVector.fromArray(S, out0, at + lanes);
            FloatVector b0 = FloatVector.fromArray(S, out1, at), b1 = FloatVector.fromArray(S, out1, at + lanes);
            FloatVector c0 = FloatVector.fromArray(S, out2, at), c1 = FloatVector.fromArray(S, out2, at + lanes);
            FloatVector e0 = FloatVector.fromArray(S, out3, at), e1 = FloatVector.fromArray(S, out3, at + lanes);
            for (int o = 0; o < n; o++) {
                int row = vOff + o * stride + c;
                FloatVector v0 = FloatVector.fromArray(S, v, row), v1 = FloatVector.fromArray(S, v, row + lanes);
                FloatVector x = FloatVector.broadcast(S, p[pOff + o]);
                a0 = v0.fma(x, a0);
                a1 = v1.fma(x, a1);
                x = FloatVector.broadcast(S, p[pOff + pStride + o]);
                b0 = v0.fma(x, b0);
                b1 = v1.fma(x, b1);
                x = FloatVector.broadcast(S, p[pOff + 2 * pStride + o]);
                c0 = v0.fma(x, c0);
                c1 = v1.fma(x, c1);
                x = FloatVector.broadcast(S, p[pOff + 3 * pStride + o]);
                e0 = v0.fma(x, e0);
                e1 = v1.fma(x, e1);
            }
            a0.intoArray(out0, at);
            a1.intoArray(out0, at + lanes);
            b0.intoArray(out1, at);
            b1.intoArray(out1, at + lanes);
            c0.intoArray(out2, at);
            c1.intoArray(out2, at + lanes);
            e0.intoArray(out3, at);
            e1.intoArray(out3, at + lanes);
        }
        if (c < dims) {
            addWeightedRows(p, pOff, n, v, vOff + c, stride, dims - c, out0, outOff + c);
            addWeightedRows(p, pOff + pStride, n, v, vOff + c, stride, dims - c, out1, outOff + c);
            addWeightedRows(p, pOff + 2 * pStride, n, v, vOff + c, stride, dims - c, out2, outOff + c);
            addWeightedRows(p, pOff + 3 * pStride, n, v, vOff + c, stride, dims - c, out3, outOff + c);
        }
    }

    // The attention kernels again for a BF16 KV cache: the same structure as the FP32 ones above,
    // each load of keys or values widened in registers (see CpuBackend's note on why not a widened copy).

    /** One vector of BF16 values from {@code a} at {@code off}, widened to floats (the BF16 bits are a float's high half). */
    private static FloatVector bf16s(short[] a, int off) {
        return ((IntVector) ShortVector.fromArray(HALF, a, off).convertShape(VectorOperators.S2I, INTS, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    @Override
    public void bf16ToFloats(short[] src, int srcOff, float[] dst, int dstOff, int n) {
        int lanes = S.length(), i = 0;
        for (; i + lanes <= n; i += lanes) {
            bf16s(src, srcOff + i).intoArray(dst, dstOff + i);
        }
        for (; i < n; i++) {
            dst[dstOff + i] = DType.bf16ToFloat(src[srcOff + i]);
        }
    }

    @Override
    public void dotColumns(float[] q, int qOff, short[] kT, int kOff, int stride, int dims, float[] out, int outOff, int n) {
        int lanes = S.length();
        int o = 0;
        // Two position vectors × even/odd dimensions: four independent FMA chains.
        for (; o + 2 * lanes <= n; o += 2 * lanes) {
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
            int d = 0;
            for (; d + 1 < dims; d += 2) {
                int row = kOff + d * stride + o;
                FloatVector qa = FloatVector.broadcast(S, q[qOff + d]), qb = FloatVector.broadcast(S, q[qOff + d + 1]);
                a0 = bf16s(kT, row).fma(qa, a0);
                a1 = bf16s(kT, row + lanes).fma(qa, a1);
                b0 = bf16s(kT, row + stride).fma(qb, b0);
                b1 = bf16s(kT, row + stride + lanes).fma(qb, b1);
            }
            if (d < dims) {
                int row = kOff + d * stride + o;
                FloatVector qa = FloatVector.broadcast(S, q[qOff + d]);
                a0 = bf16s(kT, row).fma(qa, a0);
                a1 = bf16s(kT, row + lanes).fma(qa, a1);
            }
            a0.add(b0).intoArray(out, outOff + o);
            a1.add(b1).intoArray(out, outOff + o + lanes);
        }
        for (; o + lanes <= n; o += lanes) {
            FloatVector a0 = FloatVector.zero(S);
            for (int d = 0; d < dims; d++) {
                a0 = bf16s(kT, kOff + d * stride + o).fma(FloatVector.broadcast(S, q[qOff + d]), a0);
            }
            a0.intoArray(out, outOff + o);
        }
        if (o < n) {
            SCALAR.dotColumns(q, qOff, kT, kOff + o, stride, dims, out, outOff + o, n - o);
        }
    }

    @Override
    public void addWeightedRows(float[] p, int pOff, int n, short[] v, int vOff, int stride, int dims, float[] out, int outOff) {
        int lanes = S.length();
        int c = 0;
        // Two column vectors × even/odd positions: four independent FMA chains.
        for (; c + 2 * lanes <= dims; c += 2 * lanes) {
            int at = outOff + c;
            FloatVector a0 = FloatVector.fromArray(S, out, at), a1 = FloatVector.fromArray(S, out, at + lanes);
            FloatVector b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
            int o = 0;
            for (; o + 1 < n; o += 2) {
                int row = vOff + o * stride + c;
                FloatVector pa = FloatVector.broadcast(S, p[pOff + o]), pb = FloatVector.broadcast(S, p[pOff + o + 1]);
                a0 = bf16s(v, row).fma(pa, a0);
                a1 = bf16s(v, row + lanes).fma(pa, a1);
                b0 = bf16s(v, row + stride).fma(pb, b0);
                b1 = bf16s(v, row + stride + lanes).fma(pb, b1);
            }
            if (o < n) {
                int row = vOff + o * stride + c;
                FloatVector pa = FloatVector.broadcast(S, p[pOff + o]);
                a0 = bf16s(v, row).fma(pa, a0);
                a1 = bf16s(v, row + lanes).fma(pa, a1);
            }
            a0.add(b0).intoArray(out, at);
            a1.add(b1).intoArray(out, at + lanes);
        }
        for (; c + lanes <= dims; c += lanes) {
            FloatVector a0 = FloatVector.fromArray(S, out, outOff + c);
            for (int o = 0; o < n; o++) {
                a0 = bf16s(v, vOff + o * stride + c).fma(FloatVector.broadcast(S, p[pOff + o]), a0);
            }
            a0.intoArray(out, outOff + c);
        }
        if (c < dims) {
            SCALAR.addWeightedRows(p, pOff, n, v, vOff + c, stride, dims - c, out, outOff + c);
        }
    }

    @Override
    public float largest(float[] s, int off, int n) {
        int lanes = S.length();
        if (n < lanes) {
            return SCALAR.largest(s, off, n);
        }
        int i = 0;
        FloatVector vmax = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (; i + lanes <= n; i += lanes) {
            vmax = vmax.max(FloatVector.fromArray(S, s, off + i));
        }
        float max = vmax.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            max = Math.max(max, s[off + i]);
        }
        return max;
    }

    @Override
    public float expSum(float[] s, int off, int n, float subtract, float scale) {
        int lanes = S.length();
        if (n < lanes) {
            return SCALAR.expSum(s, off, n, subtract, scale);
        }
        FloatVector vsubtract = FloatVector.broadcast(S, subtract), vscale = FloatVector.broadcast(S, scale);
        FloatVector sum = FloatVector.zero(S);
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            FloatVector e = exp(FloatVector.fromArray(S, s, off + i).sub(vsubtract).mul(vscale));
            e.intoArray(s, off + i);
            sum = sum.add(e);
        }
        float total = sum.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s[off + i] = FastExp.exp((s[off + i] - subtract) * scale);
            total += s[off + i];
        }
        return total;
    }
}
