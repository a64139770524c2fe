package io.longdoc.engine.cpu;

import java.lang.reflect.Field;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * Scalar loads from a direct (mapped) buffer by address, through {@code sun.misc.Unsafe}, as Spark's
 * own {@code Platform} class reads its off-heap memory. The panel kernels broadcast every weight
 * value they read; {@code ByteBuffer.getFloat} re-checks the buffer on each of those loads and runs
 * no faster than copying the rows first, while a load by address overlaps the weights' stream from
 * memory with the arithmetic (measured on the 110M benchmark's shapes, two threads, in one JVM
 * alternating: 125–155 against 94–96 GFLOP/s, copy included).
 *
 * <p>Callers check bounds once per call with {@link #address}, which names the range it allows,
 * and keep the buffer reachable while they read. Used only where it is silent and safe: a
 * little-endian machine, Java before 24 (from 24 on, the JDK warns on these methods and plans to
 * refuse them), and not switched off with {@code -Dlongdoc.cpu.directMemory=false}.
 */
final class DirectMemory {
    private static final sun.misc.Unsafe UNSAFE = unsafeOrNull();
    private static final long ADDRESS_FIELD = UNSAFE == null ? -1 : addressFieldOffset();
    static final boolean AVAILABLE = UNSAFE != null && ADDRESS_FIELD >= 0;

    private DirectMemory() {
    }

    private static sun.misc.Unsafe unsafeOrNull() {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN || Runtime.version().feature() >= 24
                || !Boolean.parseBoolean(System.getProperty("longdoc.cpu.directMemory", "true"))) {
            return null;
        }
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            return (sun.misc.Unsafe) f.get(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    private static long addressFieldOffset() {
        try {
            return UNSAFE.objectFieldOffset(Buffer.class.getDeclaredField("address"));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return -1;
        }
    }

    /**
     * The address of byte {@code byteOff} of a direct little-endian buffer, after checking that
     * {@code [byteOff, byteOff + length)} lies within it: the one check for all loads of a call.
     */
    static long address(ByteBuffer bytes, long byteOff, long length) {
        if (!bytes.isDirect() || bytes.order() != ByteOrder.LITTLE_ENDIAN) {
            throw new IllegalArgumentException("direct loads need a direct little-endian buffer, got " + bytes);
        }
        Objects.checkFromIndexSize(byteOff, length, bytes.limit());
        return UNSAFE.getLong(bytes, ADDRESS_FIELD) + byteOff;
    }

    /** The float at an address from {@link #address}. */
    static float getFloat(long address) {
        return UNSAFE.getFloat(address);
    }

    /** The int at an address from {@link #address}. */
    static int getInt(long address) {
        return UNSAFE.getInt(address);
    }
}
