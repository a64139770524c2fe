package io.longdoc.engine.model;

/** Weight element types the engine reads; all are converted to FP32 for arithmetic. */
public enum DType {
    F32(4), F16(2), BF16(2);

    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** From a safetensors dtype name, or null when unsupported. */
    static DType fromSafetensors(String name) {
        return switch (name) {
            case "F32" -> F32;
            case "F16" -> F16;
            case "BF16" -> BF16;
            default -> null;
        };
    }

    private static final float[] HALF_TO_FLOAT = new float[65536];

    static {
        for (int h = 0; h < 65536; h++) {
            HALF_TO_FLOAT[h] = halfToFloatSlow((short) h);
        }
    }

    /** IEEE 754 binary16 to binary32, exactly. */
    public static float halfToFloat(short h) {
        return HALF_TO_FLOAT[h & 0xFFFF];
    }

    /**
     * binary32 to BF16, rounded to nearest, ties to even (as PyTorch's {@code .to(torch.bfloat16)});
     * NaN stays a (quiet) NaN, and values past the largest BF16 round to infinity.
     */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** BF16 to binary32: the BF16 bits are the high half of the float's. */
    public static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    /** IEEE 754 binary16 to binary32 (subnormals, infinities and NaN included). */
    private static float halfToFloatSlow(short half) {
        int h = half & 0xFFFF;
        int sign = (h >>> 15) << 31;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0) {
            if (mant == 0) {
                return Float.intBitsToFloat(sign);
            }
            // Subnormal: value = mant × 2^-24.
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        if (exp == 31) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }
}
