package io.longdoc.engine.cuda;

/** BF16 conversions as the GPU does them: round to nearest even (NaN kept quiet), widening exact. */
public final class Bf16 {
    private Bf16() {
    }

    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40);   // NaN stays NaN
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public static float toFloat(short h) {
        return Float.intBitsToFloat((h & 0xffff) << 16);
    }

    /** The value after a round trip through BF16 (what a BF16 buffer on the GPU holds). */
    public static float round(float f) {
        return toFloat(fromFloat(f));
    }
}
