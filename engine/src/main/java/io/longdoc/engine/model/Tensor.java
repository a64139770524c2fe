package io.longdoc.engine.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;

/**
 * A weight tensor, memory-mapped from its file (never copied whole onto the heap), row-major.
 * Rows are converted to FP32 on demand.
 */
public final class Tensor {
    public final String name;
    public final String file;
    public final DType dtype;
    public final long[] shape;
    private final ByteBuffer data;       // little-endian view of exactly this tensor's bytes
    private final FloatBuffer f32;
    private final ShortBuffer s16;
    private final int rows, cols;

    Tensor(String name, String file, DType dtype, long[] shape, ByteBuffer data) {
        this.name = name;
        this.file = file;
        this.dtype = dtype;
        this.shape = shape;
        this.data = data.order(ByteOrder.LITTLE_ENDIAN);
        long elements = 1;
        for (long d : shape) {
            elements *= d;
        }
        if (elements * dtype.bytes != data.remaining()) {
            throw new ModelFormatException(file + ": tensor " + name + " has " + data.remaining() + " bytes, its shape "
                    + Arrays.toString(shape) + " × " + dtype + " needs " + elements * dtype.bytes);
        }
        this.cols = shape.length == 0 ? 1 : (int) shape[shape.length - 1];
        this.rows = (int) (cols == 0 ? 0 : elements / cols);
        this.f32 = dtype == DType.F32 ? this.data.asFloatBuffer() : null;
        this.s16 = dtype != DType.F32 ? this.data.asShortBuffer() : null;
    }

    /** The mapped bytes (little-endian, read-only use), for kernels that read weights in place. */
    public ByteBuffer bytes() {
        return data;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** Checks the shape, naming the file and tensor when it differs. */
    public Tensor expect(long... expected) {
        if (!Arrays.equals(shape, expected)) {
            throw new ModelFormatException(file + ": tensor " + name + " has shape " + Arrays.toString(shape)
                    + ", the config implies " + Arrays.toString(expected));
        }
        return this;
    }

    /** Row {@code r} as FP32 into {@code dst[0, cols)}; {@code scratch} holds at least cols shorts. */
    public void readRow(int r, float[] dst, short[] scratch) {
        readRows(r, 1, dst, scratch);
    }

    /**
     * Rows [r, r + count) as FP32 into {@code dst[0, count · cols)} with one bulk read, which
     * amortises the per-call cost of reading from the mapped file over many rows.
     */
    public void readRows(int r, int count, float[] dst, short[] scratch) {
        int base = r * cols, n = count * cols;
        switch (dtype) {
            case F32 -> f32.get(base, dst, 0, n);
            case BF16 -> {
                s16.get(base, scratch, 0, n);
                for (int i = 0; i < n; i++) {
                    dst[i] = Float.intBitsToFloat((scratch[i] & 0xFFFF) << 16);
                }
            }
            case F16 -> {
                s16.get(base, scratch, 0, n);
                for (int i = 0; i < n; i++) {
                    dst[i] = DType.halfToFloat(scratch[i]);
                }
            }
        }
    }

    /** The whole tensor as FP32 (for small tensors: norms). */
    public float[] toFloats() {
        float[] out = new float[rows * cols];
        float[] row = new float[cols];
        short[] scratch = new short[cols];
        for (int r = 0; r < rows; r++) {
            readRow(r, row, scratch);
            System.arraycopy(row, 0, out, r * cols, cols);
        }
        return out;
    }
}
