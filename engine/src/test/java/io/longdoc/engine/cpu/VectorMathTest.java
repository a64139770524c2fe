package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.DType;
import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.runtime.Chunk;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The SIMD kernels against the scalar ones they stand beside. */
class VectorMathTest {
    @Test
    void simdKernelsEqualScalarOnOddSizes() {
        VectorMath fast = VectorMath.get(), slow = VectorMath.scalar();
        assertTrue(VectorMath.simdAvailable(), "tests run with --add-modules jdk.incubator.vector; the SIMD path must be the one tested");
        assertTrue(fast.name().startsWith("simd"), fast.name());
        String bits = System.getProperty("longdoc.cpu.vectorBits");
        if (bits != null) {
            // The pom's simd-512 run: the kernels of that width are the ones tested.
            assertTrue(fast.name().startsWith("simd-" + bits), fast.name() + " with longdoc.cpu.vectorBits=" + bits);
        }
        Random r = new Random(1);
        for (int n : new int[] {1, 7, 8, 15, 16, 31, 33, 64, 100, 257, 1000, 2051}) {
            float[] a = new float[n + 5], b = new float[n + 5], c = new float[n], d = new float[n], e = new float[n];
            for (int i = 0; i < a.length; i++) {
                a[i] = r.nextFloat() - 0.5f;
                b[i] = r.nextFloat() - 0.5f;
            }
            for (int i = 0; i < n; i++) {
                c[i] = r.nextFloat();
                d[i] = r.nextFloat();
                e[i] = r.nextFloat();
            }
            assertEquals(slow.dot(a, 3, b, 5, n), fast.dot(a, 3, b, 5, n), 1e-4f * n, "dot n=" + n);
            // Rows a[3 + k, 3 + k + n) for k = 0, 1, 2 read in place from little-endian bytes, at an
            // offset and a gap apart, as from a mapped weight file.
            int rowBytes = 4 * n + 4;
            java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(8 + 3 * rowBytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int k = 0; k < 3; k++) {
                for (int i = 0; i < n; i++) {
                    bytes.putFloat(8 + k * rowBytes + 4 * i, a[3 + k + i]);
                }
            }
            float[] b5 = java.util.Arrays.copyOfRange(b, 5, 5 + n);
            for (VectorMath m : new VectorMath[] {slow, fast}) {
                float[] rowDots = new float[5];
                rowDots[4] = 42f;
                m.dotF32Rows(bytes, 8, rowBytes, 3, b5, n, rowDots, 1);
                for (int k = 0; k < 3; k++) {
                    assertEquals(slow.dot(a, 3 + k, b, 5, n), rowDots[1 + k], 1e-4f * n, m.name() + " dotF32Rows n=" + n + " row " + k);
                }
                assertEquals(0f, rowDots[0], m.name() + " dotF32Rows wrote before outOff");
                assertEquals(42f, rowDots[4], m.name() + " dotF32Rows wrote past its rows");
            }
            float[] o1 = new float[4], o2 = new float[4];
            slow.dot4(a, 2, b, c, d, e, n, o1);
            fast.dot4(a, 2, b, c, d, e, n, o2);
            for (int k = 0; k < 4; k++) {
                assertEquals(o1[k], o2[k], 1e-4f * n, "dot4 n=" + n);
            }
            float[] p1 = new float[8], p2 = new float[8];
            slow.dot2x4(a, 0, 4, b, c, d, e, n, p1);
            fast.dot2x4(a, 0, 4, b, c, d, e, n, p2);
            for (int k = 0; k < 8; k++) {
                assertEquals(p1[k], p2[k], 1e-4f * n, "dot2x4 n=" + n);
            }
            float[] y1 = b.clone(), y2 = b.clone();
            slow.axpy(0.37f, a, 1, y1, 2, n);
            fast.axpy(0.37f, a, 1, y2, 2, n);
            for (int i = 0; i < y1.length; i++) {
                assertEquals(y1[i], y2[i], 1e-6f, "axpy n=" + n);
            }
        }
    }

    @Test
    void bf16KernelsWidenEveryBitPatternAndSumLikeFloat64() {
        Random r = new Random(3);
        for (VectorMath m : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            for (int n : new int[] {1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 127, 128, 129, 257, 300, 2051}) {
                // Rows from byte 6, not a multiple of any vector size: a tensor may start anywhere in a mapped file.
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(6 + 2 * n + 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                short[] bits = new short[n];
                for (int i = 0; i < n; i++) {
                    bits[i] = (short) r.nextInt(1 << 16);   // any pattern: negatives, subnormals, infinities, NaNs
                    bytes.putShort(6 + 2 * i, bits[i]);
                }
                float[] widened = new float[n + 1];
                widened[n] = 42f;
                m.bf16ToFloats(bytes, 6, widened, n);
                for (int i = 0; i < n; i++) {
                    assertEquals((bits[i] & 0xFFFF) << 16, Float.floatToRawIntBits(widened[i]), m.name() + " bf16ToFloats n=" + n + " i=" + i);
                }
                assertEquals(42f, widened[n], m.name() + " wrote past n");
                assertSameBits(m.pairOrder(java.util.Arrays.copyOf(widened, n), n), widenedInPairOrder(m, bytes, 6, n, false), m.name() + " bf16ToFloats in pair order n=" + n);

                // Finite weights of a real range for the dot product.
                float[] x = randoms(r, n);
                double want = 0;
                for (int i = 0; i < n; i++) {
                    float w = (r.nextFloat() - 0.5f) * 4;
                    short b = (short) (Float.floatToRawIntBits(w) >>> 16);
                    bytes.putShort(6 + 2 * i, b);
                    want += (double) Float.intBitsToFloat((b & 0xFFFF) << 16) * x[i];
                }
                float[] ordered = m.pairOrder(x, n);
                assertEquals(want, m.dotBf16(bytes, 6, ordered, n), 1e-5 * n, m.name() + " dotBf16 n=" + n);
            }
        }
    }

    @Test
    void f16KernelsWidenEveryBitPatternAndSumLikeFloat64() {
        // A few halves by hand (IEEE 754 binary16): independent of any conversion code.
        short[] known = {0x3C00, (short) 0xC000, 0x0001, (short) 0x8000, 0x7BFF, 0x7C00, (short) 0xFC00, 0x03FF};
        float[] values = {1f, -2f, 0x1p-24f, -0f, 65504f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 1023 * 0x1p-24f};
        Random r = new Random(5);
        for (VectorMath m : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            java.nio.ByteBuffer all = java.nio.ByteBuffer.allocate(2 + 2 * 65536).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int h = 0; h < 65536; h++) {
                all.putShort(2 + 2 * h, (short) h);
            }
            float[] widened = new float[65536];
            m.f16ToFloats(all, 2, widened, 65536);
            for (int h = 0; h < 65536; h++) {
                assertEquals(Float.floatToRawIntBits(io.longdoc.engine.model.DType.halfToFloat((short) h)), Float.floatToRawIntBits(widened[h]),
                        m.name() + " f16ToFloats " + Integer.toHexString(h));
            }
            for (int k = 0; k < known.length; k++) {
                assertEquals(Float.floatToRawIntBits(values[k]), Float.floatToRawIntBits(widened[known[k] & 0xFFFF]), m.name() + " " + Integer.toHexString(known[k] & 0xFFFF));
            }
            for (int n : new int[] {65536, 65535 - 16}) {
                assertSameBits(m.pairOrder(java.util.Arrays.copyOf(widened, n), n), widenedInPairOrder(m, all, 2, n, true), m.name() + " f16ToFloats in pair order n=" + n);
            }
            // The dot product over finite halves, against float64.
            for (int n : new int[] {1, 15, 16, 17, 32, 33, 100, 2051}) {
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(6 + 2 * n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                float[] x = randoms(r, n);
                double want = 0;
                for (int i = 0; i < n; i++) {
                    // Finite halves of magnitude 2^-14 to 2^2, either sign.
                    short h = (short) ((r.nextInt(2) << 15) | ((1 + r.nextInt(17)) << 10) | r.nextInt(1024));
                    bytes.putShort(6 + 2 * i, h);
                    want += (double) io.longdoc.engine.model.DType.halfToFloat(h) * x[i];
                }
                assertEquals(want, m.dotF16(bytes, 6, m.pairOrder(x, n), n), 1e-5 * n, m.name() + " dotF16 n=" + n);
            }
        }
    }

    @Test
    void attentionKernelsEqualTheObviousSumsOnOddShapes() {
        Random r = new Random(7);
        for (VectorMath m : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            for (int dims : new int[] {1, 3, 8, 12, 64, 80, 128}) {
                for (int n : new int[] {1, 5, 8, 16, 17, 40}) {
                    int stride = n + 3;
                    float[] q = randoms(r, dims + 2), kT = randoms(r, 1 + dims * stride), v = randoms(r, 2 + n * (dims + 5));
                    // Scores against transposed keys.
                    float[] got = new float[n + 1];
                    m.dotColumns(q, 2, kT, 1, stride, dims, got, 1, n);
                    for (int o = 0; o < n; o++) {
                        double want = 0;
                        for (int d = 0; d < dims; d++) {
                            want += (double) q[2 + d] * kT[1 + d * stride + o];
                        }
                        assertEquals(want, got[1 + o], 1e-5 * dims, m.name() + " dotColumns dims=" + dims + " n=" + n + " o=" + o);
                    }
                    // Weighted value rows, added to what the output holds.
                    float[] p = randoms(r, n + 1), acc = randoms(r, dims + 4), before = acc.clone();
                    m.addWeightedRows(p, 1, n, v, 2, dims + 5, dims, acc, 4);
                    for (int d = 0; d < dims; d++) {
                        double want = before[4 + d];
                        for (int o = 0; o < n; o++) {
                            want += (double) p[1 + o] * v[2 + o * (dims + 5) + d];
                        }
                        assertEquals(want, acc[4 + d], 1e-5 * n, m.name() + " addWeightedRows dims=" + dims + " n=" + n + " d=" + d);
                    }
                }
            }
            // Four queries at once: each query's scores and weighted values as the obvious sums,
            // rows of the other queries and values around the ranges untouched.
            for (int dims : new int[] {1, 7, 16, 64, 72, 128}) {
                for (int n : new int[] {1, 9, 16, 32, 37}) {
                    int stride = n + 3, outStride = n + 2;
                    float[][] qs = {randoms(r, dims + 2), randoms(r, dims + 2), randoms(r, dims + 2), randoms(r, dims + 2)};
                    float[] kT = randoms(r, 1 + dims * stride), v = randoms(r, 2 + n * (dims + 5));
                    float[] got = new float[1 + 4 * outStride];
                    m.dotColumns4(qs[0], qs[1], qs[2], qs[3], 2, kT, 1, stride, dims, got, 1, outStride, n);
                    for (int t = 0; t < 4; t++) {
                        for (int o = 0; o < outStride; o++) {
                            double want = 0;
                            for (int d = 0; d < dims && o < n; d++) {
                                want += (double) qs[t][2 + d] * kT[1 + d * stride + o];
                            }
                            assertEquals(want, got[1 + t * outStride + o], 1e-5 * dims, m.name() + " dotColumns4 dims=" + dims + " n=" + n + " t=" + t + " o=" + o);
                        }
                    }
                    float[] p = randoms(r, 1 + 4 * outStride);
                    float[][] acc = {randoms(r, dims + 6), randoms(r, dims + 6), randoms(r, dims + 6), randoms(r, dims + 6)};
                    float[][] before = {acc[0].clone(), acc[1].clone(), acc[2].clone(), acc[3].clone()};
                    m.addWeightedRows4(p, 1, outStride, n, v, 2, dims + 5, dims, acc[0], acc[1], acc[2], acc[3], 4);
                    for (int t = 0; t < 4; t++) {
                        for (int d = -4; d < dims + 2; d++) {
                            double want = before[t][4 + d];
                            for (int o = 0; o < n && d >= 0 && d < dims; o++) {
                                want += (double) p[1 + t * outStride + o] * v[2 + o * (dims + 5) + d];
                            }
                            assertEquals(want, acc[t][4 + d], 1e-5 * n, m.name() + " addWeightedRows4 dims=" + dims + " n=" + n + " t=" + t + " d=" + d);
                        }
                    }
                }
            }
            // Eight queries at once, the same way; the queries are rows of one array, from row 1.
            for (int dims : new int[] {1, 7, 16, 64, 72, 128}) {
                for (int n : new int[] {1, 9, 16, 32, 37}) {
                    int stride = n + 3, outStride = n + 2;
                    float[][] qs = new float[10][];
                    float[][] acc = new float[10][], before = new float[10][];
                    for (int t = 0; t < 10; t++) {
                        qs[t] = randoms(r, dims + 2);
                        acc[t] = randoms(r, dims + 6);
                        before[t] = acc[t].clone();
                    }
                    float[] kT = randoms(r, 1 + dims * stride), v = randoms(r, 2 + n * (dims + 5));
                    float[] got = new float[1 + 8 * outStride];
                    m.dotColumns8(qs, 1, 2, kT, 1, stride, dims, got, 1, outStride, n);
                    for (int t = 0; t < 8; t++) {
                        for (int o = 0; o < outStride; o++) {
                            double want = 0;
                            for (int d = 0; d < dims && o < n; d++) {
                                want += (double) qs[1 + t][2 + d] * kT[1 + d * stride + o];
                            }
                            assertEquals(want, got[1 + t * outStride + o], 1e-5 * dims, m.name() + " dotColumns8 dims=" + dims + " n=" + n + " t=" + t + " o=" + o);
                        }
                    }
                    float[] p = randoms(r, 1 + 8 * outStride);
                    m.addWeightedRows8(p, 1, outStride, n, v, 2, dims + 5, dims, acc, 1, 4);
                    for (int t = 0; t < 10; t++) {
                        for (int d = -4; d < dims + 2; d++) {
                            double want = before[t][4 + d];
                            for (int o = 0; o < n && t >= 1 && t <= 8 && d >= 0 && d < dims; o++) {
                                want += (double) p[1 + (t - 1) * outStride + o] * v[2 + o * (dims + 5) + d];
                            }
                            assertEquals(want, acc[t][4 + d], 1e-5 * n, m.name() + " addWeightedRows8 dims=" + dims + " n=" + n + " t=" + t + " d=" + d);
                        }
                    }
                }
            }
            // The one-query kernels on a BF16 KV cache (decode): the obvious sums of the widened
            // values; a prefill tile widens a block once (bf16ToFloats) and runs the FP32 kernels.
            for (int dims : new int[] {1, 7, 16, 64, 72}) {
                for (int n : new int[] {1, 9, 16, 32, 37}) {
                    int stride = n + 3;
                    float[] q = randoms(r, dims + 2);
                    short[] kT = bf16s(randoms(r, 1 + dims * stride)), v = bf16s(randoms(r, 2 + n * (dims + 5)));
                    float[] one = new float[n + 1];
                    m.dotColumns(q, 2, kT, 1, stride, dims, one, 1, n);
                    for (int o = 0; o < n; o++) {
                        double want = 0;
                        for (int d = 0; d < dims; d++) {
                            want += (double) q[2 + d] * DType.bf16ToFloat(kT[1 + d * stride + o]);
                        }
                        assertEquals(want, one[1 + o], 1e-5 * dims, m.name() + " bf16 dotColumns dims=" + dims + " n=" + n + " o=" + o);
                    }
                    float[] p = randoms(r, n + 1), acc = randoms(r, dims + 6), before = acc.clone();
                    m.addWeightedRows(p, 1, n, v, 2, dims + 5, dims, acc, 4);
                    for (int d = -4; d < dims + 2; d++) {
                        double want = before[4 + d];
                        for (int o = 0; o < n && d >= 0 && d < dims; o++) {
                            want += (double) p[1 + o] * DType.bf16ToFloat(v[2 + o * (dims + 5) + d]);
                        }
                        assertEquals(want, acc[4 + d], 1e-5 * n, m.name() + " bf16 addWeightedRows dims=" + dims + " n=" + n + " d=" + d);
                    }
                    float[] widened = randoms(r, kT.length + 2), untouched = widened.clone();
                    m.bf16ToFloats(kT, 1, widened, 2, kT.length - 1);
                    for (int i = 0; i < widened.length; i++) {
                        float want = i >= 2 && i < kT.length + 1 ? DType.bf16ToFloat(kT[i - 1]) : untouched[i];
                        assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(widened[i]), m.name() + " bf16ToFloats n=" + (kT.length - 1) + " i=" + i);
                    }
                }
            }
        }
    }

    @Test
    void everyHeadKernelsEqualTheObviousSumsOnOddShapes() {
        // A decode token's scores and weighted values for all its heads over one KV block: each
        // query head h reads KV head h / group; outputs around the ranges stay untouched.
        Random r = new Random(11);
        for (VectorMath m : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            for (int heads : new int[] {1, 3, 4, 5, 8, 9}) {
                for (int group : new int[] {1, 2, 4}) {
                    int kvHeads = (heads + group - 1) / group;
                    for (int dims : new int[] {1, 3, 8, 12, 16, 24, 31, 64}) {
                        for (int n : new int[] {1, 5, 16, 17, 33}) {
                            String shape = m.name() + " heads=" + heads + " group=" + group + " dims=" + dims + " n=" + n;
                            int stride = n + 3, kvStride = dims * stride + 5, outStride = n + 2;
                            float[] q = randoms(r, 2 + heads * dims), kT = randoms(r, 1 + kvHeads * kvStride);
                            float[] scores = randoms(r, 1 + heads * outStride), before = scores.clone();
                            m.dotColumnsHeads(q, 2, kT, 1, stride, kvStride, dims, heads, group, scores, 1, outStride, n);
                            for (int i = 0; i < scores.length; i++) {
                                int h = (i - 1) / outStride, o = (i - 1) % outStride;
                                double want = i >= 1 && o < n ? 0 : before[i];
                                for (int d = 0; d < dims && i >= 1 && o < n; d++) {
                                    want += (double) q[2 + h * dims + d] * kT[1 + (h / group) * kvStride + d * stride + o];
                                }
                                assertEquals(want, scores[i], 1e-5 * dims, shape + " dotColumnsHeads i=" + i);
                            }
                            int vStride = kvHeads * dims + 3;
                            float[] v = randoms(r, 2 + n * vStride), acc = randoms(r, 4 + heads * dims + 3), accBefore = acc.clone();
                            m.addWeightedRowsHeads(scores, 1, outStride, n, v, 2, vStride, dims, heads, group, acc, 4);
                            for (int i = 0; i < acc.length; i++) {
                                int h = (i - 4) / dims, d = (i - 4) % dims;
                                double want = accBefore[i];
                                for (int o = 0; o < n && i >= 4 && h < heads; o++) {
                                    want += (double) scores[1 + h * outStride + o] * v[2 + o * vStride + (h / group) * dims + d];
                                }
                                assertEquals(want, acc[i], 1e-5 * n, shape + " addWeightedRowsHeads i=" + i);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void panelKernelEqualsTheObviousSumsOnOddShapes() {
        Random r = new Random(11);
        for (VectorMath m : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            // Whole panels and half panels; row counts around the SIMD kernels' groups of six
            // (whole panels) and twelve (half panels): a short last group must not write past its rows.
            for (int width : new int[] {m.panelWidth(), m.panelWidth() / 2}) {
                for (int rows : new int[] {1, 2, 5, 6, 7, 11, 12, 13, 25}) {
                    for (int cols : new int[] {1, 3, 8, 64, 100}) {
                        float[] w = randoms(r, 3 + rows * cols), xT = randoms(r, cols * width);
                        float[] out = new float[rows * width + 1];
                        out[rows * width] = 42f;
                        // The same rows in a direct buffer, after 12 bytes of something else, for the in-place kernel.
                        java.nio.ByteBuffer mapped = java.nio.ByteBuffer.allocateDirect(12 + 4 * rows * cols).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                        for (int i = 0; i < rows * cols; i++) {
                            mapped.putFloat(12 + 4 * i, w[3 + i]);
                        }
                        float[] inPlace = new float[rows * width + 1];
                        inPlace[rows * width] = 42f;
                        m.rowsTimesPanel(w, 3, rows, cols, xT, width, out);
                        m.rowsTimesPanel(mapped, 12, rows, cols, xT, width, inPlace);
                        for (int row = 0; row < rows; row++) {
                            for (int t = 0; t < width; t++) {
                                double want = 0;
                                for (int j = 0; j < cols; j++) {
                                    want += (double) w[3 + row * cols + j] * xT[j * width + t];
                                }
                                String where = " width=" + width + " rows=" + rows + " cols=" + cols + " r=" + row + " t=" + t;
                                assertEquals(want, out[row * width + t], 1e-5 * cols, m.name() + " rowsTimesPanel" + where);
                                assertEquals(want, inPlace[row * width + t], 1e-5 * cols, m.name() + " rowsTimesPanel, rows in place," + where);
                            }
                        }
                        assertEquals(42f, out[rows * width], m.name() + " wrote past its rows");
                        assertEquals(42f, inPlace[rows * width], m.name() + " wrote past its rows (rows in place)");
                    }
                }
            }
        }
    }

    @Test
    void panelKernelRefusesRowsPastTheEndOfTheBuffer() {
        VectorMath m = VectorMath.get();
        int width = m.panelWidth(), rows = 6, cols = 10;
        java.nio.ByteBuffer mapped = java.nio.ByteBuffer.allocateDirect(4 * rows * cols).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] xT = new float[cols * width], out = new float[rows * width];
        m.rowsTimesPanel(mapped, 0, rows, cols, xT, width, out);
        // One float more than the buffer holds: an exception, never a read past the mapping.
        assertThrows(IndexOutOfBoundsException.class, () -> m.rowsTimesPanel(mapped, 4, rows, cols, xT, width, out));
        assertThrows(IndexOutOfBoundsException.class, () -> m.rowsTimesPanel(mapped, 0, rows + 1, cols, xT, width, new float[(rows + 1) * width]));
    }

    @Test
    void bf16PanelKernelReadingRowsInPlaceEqualsTheObviousSums() {
        Random r = new Random(12);
        for (VectorMath m : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            int width = m.panelWidth();
            for (int rows : new int[] {1, 5, 6, 7, 13}) {
                for (int cols : new int[] {2, 8, 64, 100}) {
                    // BF16 rows after 6 bytes of something else (an odd number of values: the pairs
                    // the kernel loads need not be 4-byte aligned). The want uses each value as BF16 holds it.
                    java.nio.ByteBuffer mapped = java.nio.ByteBuffer.allocateDirect(6 + 2 * rows * cols).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                    float[] w = new float[rows * cols];
                    for (int i = 0; i < rows * cols; i++) {
                        short bits = (short) (Float.floatToRawIntBits((float) r.nextGaussian()) >>> 16);
                        mapped.putShort(6 + 2 * i, bits);
                        w[i] = Float.intBitsToFloat(bits << 16);
                    }
                    float[] xT = randoms(r, cols * width);
                    float[] out = new float[rows * width + 1];
                    out[rows * width] = 42f;
                    m.rowsTimesPanelBf16(mapped, 6, rows, cols, xT, width, out);
                    for (int row = 0; row < rows; row++) {
                        for (int t = 0; t < width; t++) {
                            double want = 0;
                            for (int j = 0; j < cols; j++) {
                                want += (double) w[row * cols + j] * xT[j * width + t];
                            }
                            assertEquals(want, out[row * width + t], 1e-5 * cols, m.name() + " rowsTimesPanelBf16 rows=" + rows + " cols=" + cols + " r=" + row + " t=" + t);
                        }
                    }
                    assertEquals(42f, out[rows * width], m.name() + " wrote past its rows");
                    // One value more than the buffer holds: an exception, never a read past the mapping.
                    assertThrows(IndexOutOfBoundsException.class, () -> m.rowsTimesPanelBf16(mapped, 8, rows, cols, xT, width, out));
                }
            }
        }
    }

    /** The n 16-bit values from byteOff widened in pair order (F16 or BF16), checking nothing is written past n. */
    private static float[] widenedInPairOrder(VectorMath m, java.nio.ByteBuffer bytes, int byteOff, int n, boolean f16) {
        float[] out = new float[n + 1];
        out[n] = 42f;
        if (f16) {
            m.f16ToFloats(bytes, byteOff, out, n, true);
        } else {
            m.bf16ToFloats(bytes, byteOff, out, n, true);
        }
        assertEquals(42f, out[n], m.name() + " wrote past n in pair order");
        return java.util.Arrays.copyOf(out, n);
    }

    private static void assertSameBits(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), what + " i=" + i);
        }
    }

    /** Each value rounded to BF16. */
    private static short[] bf16s(float[] a) {
        short[] b = new short[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = DType.floatToBf16(a[i]);
        }
        return b;
    }

    @Test
    void floatToBf16RoundsToNearestEven() {
        // Exactly representable values pass unchanged; below, at and above half an ulp of BF16 (2^-8 at 1).
        assertEquals(1f, DType.bf16ToFloat(DType.floatToBf16(1f)), 0);
        assertEquals(-2.5f, DType.bf16ToFloat(DType.floatToBf16(-2.5f)), 0);
        assertEquals(1f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-9f)), 0);                  // below half: down
        assertEquals(1f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-8f)), 0);                  // tie, 1 is even: down
        assertEquals(1f + 0x1p-6f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-7f + 0x1p-8f)), 0);  // tie, odd below: up
        assertEquals(1f + 0x1p-7f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-8f + 0x1p-20f)), 0); // past half: up
        assertEquals(Float.POSITIVE_INFINITY, DType.bf16ToFloat(DType.floatToBf16(Float.MAX_VALUE)), 0);
        assertEquals(Float.NEGATIVE_INFINITY, DType.bf16ToFloat(DType.floatToBf16(Float.NEGATIVE_INFINITY)), 0);
        assertTrue(Float.isNaN(DType.bf16ToFloat(DType.floatToBf16(Float.NaN))));
        assertTrue(Float.isNaN(DType.bf16ToFloat(DType.floatToBf16(Float.intBitsToFloat(0x7F800001)))), "a NaN whose payload is only in the low bits");
        // Against the definition, on random values: the nearest of the two neighbouring BF16 values.
        Random r = new Random(3);
        for (int i = 0; i < 100_000; i++) {
            // Exponents below the largest, where both neighbours are finite (overflow is checked above).
            float f = Float.intBitsToFloat(r.nextInt() & 0x7EFFFFFF | (r.nextBoolean() ? 0x80000000 : 0));
            float down = Float.intBitsToFloat(Float.floatToRawIntBits(f) & 0xFFFF0000);
            float up = Float.intBitsToFloat((Float.floatToRawIntBits(f) & 0xFFFF0000) + 0x10000);
            float got = DType.bf16ToFloat(DType.floatToBf16(f));
            double toDown = Math.abs((double) f - down), toUp = Math.abs((double) up - f);
            assertTrue(got == (toDown < toUp ? down : toUp < toDown ? up : got) && (got == down || got == up), f + " -> " + got);
        }
    }

    private static float[] randoms(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextFloat() * 2 - 1;
        }
        return a;
    }

    /**
     * A 40-token prompt in KV blocks 0–2, logits at three positions: with 256-bit SIMD two panels of
     * 16 and a half panel of 8; with 512-bit one panel of 32 and 8 left over for the row-dot kernels.
     */
    private static Chunk fortyTokens(ModelConfig c) {
        int[] tokens = new int[40];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = (i * 37 + 11) % c.vocabSize();
        }
        return new Chunk(new int[] {0, 1, 2}, 0, tokens, new int[] {0, 20, 39}, tokens.length);
    }

    @Test
    void wholeForwardPassAgreesBetweenScalarAndSimd() {
        Path dir = Shared.require("models/index-tiny-random");
        LlamaWeights w = new LlamaWeights(ModelConfig.load(dir), Weights.open(dir));
        Chunk chunk = fortyTokens(w.config);
        try (CpuBackend fast = new CpuBackend(w, 4, 16, 2, VectorMath.get());
             CpuBackend slow = new CpuBackend(w, 4, 16, 1, VectorMath.scalar())) {
            float[][] a = fast.forward(List.of(chunk));
            float[][] b = slow.forward(List.of(chunk));
            for (int i = 0; i < a.length; i++) {
                for (int j = 0; j < a[i].length; j++) {
                    assertEquals(b[i][j], a[i][j], 1e-4f, "row " + i + " logit " + j);
                }
            }
        }
    }

    @Test
    void wholeForwardPassWithABf16CacheAgreesBetweenScalarAndSimd() {
        Path dir = Shared.require("models/index-tiny-random");
        LlamaWeights w = new LlamaWeights(ModelConfig.load(dir), Weights.open(dir));
        Chunk chunk = fortyTokens(w.config);
        try (CpuBackend fast = new CpuBackend(w, 4, 16, 2, VectorMath.get(), true);
             CpuBackend slow = new CpuBackend(w, 4, 16, 1, VectorMath.scalar(), true);
             CpuBackend exact = new CpuBackend(w, 4, 16, 1, VectorMath.scalar())) {
            float[][] a = fast.forward(List.of(chunk));
            float[][] b = slow.forward(List.of(chunk));
            float[][] f32 = exact.forward(List.of(chunk));
            double apart = 0, simdScalar = 0;
            for (int i = 0; i < a.length; i++) {
                for (int j = 0; j < a[i].length; j++) {
                    simdScalar = Math.max(simdScalar, Math.abs(b[i][j] - a[i][j]));
                    apart = Math.max(apart, Math.abs(b[i][j] - f32[i][j]));
                }
            }
            // Sums in another order round a few keys and values to the other neighbouring BF16 value
            // (measured: 1.2e-4 apart), far less than BF16 rounding moves the logits from an FP32
            // cache's (7.4e-3), which shows the cache really is BF16.
            assertTrue(simdScalar < 1e-3, "SIMD and scalar logits with a BF16 cache are " + simdScalar + " apart");
            assertTrue(apart > 1e-3, "a BF16 cache gave the FP32 cache's logits within " + apart);
        }
    }

    @Test
    void expSumAgreesWithMathExpDownToUnderflow() {
        // Softmax numerators: exponents from 0 down to far past float underflow (−87.3), where
        // each result must vanish (at most e^−87.3, 1.22e−38) and the sum still be right.
        java.util.SplittableRandom random = new java.util.SplittableRandom(9);
        for (VectorMath m : new VectorMath[] {VectorMath.get(), VectorMath.scalar()}) {
            for (float scale : new float[] {1f, 0.125f}) {
                int n = 1001;
                float[] s = new float[n];
                for (int i = 0; i < n; i++) {
                    s[i] = (float) (-random.nextDouble() * (i % 4 == 0 ? 2000 : 100));
                }
                s[7] = 3f;
                float[] got = s.clone();
                float sum = m.expSum(got, 0, n, 3f, scale);
                double wantSum = 0;
                for (int i = 0; i < n; i++) {
                    float x = (s[i] - 3f) * scale;   // the exponent as the kernel rounds it
                    double want = Math.exp(x);
                    wantSum += want;
                    assertEquals(want, got[i], 2e-7 * want + 1.3e-38, m.name() + " e^" + x);
                }
                assertEquals(wantSum, sum, 1e-6 * wantSum, m.name() + " sum, scale " + scale);
            }
        }
    }

    @Test
    void swigluAgreesWithMathExpIncludingLargeGates() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(5);
        int n = 1003;
        float[] gate = new float[n], up = new float[n];
        for (int i = 0; i < n; i++) {
            gate[i] = (float) ((random.nextDouble() - 0.5) * (i % 3 == 0 ? 400 : 20));
            up[i] = (float) (random.nextDouble() - 0.5) * 4;
        }
        gate[0] = -200f;
        gate[1] = 200f;
        float[] fast = gate.clone(), slow = gate.clone();
        VectorMath.get().swiglu(fast, up, n);
        VectorMath.scalar().swiglu(slow, up, n);
        for (int i = 0; i < n; i++) {
            double g = gate[i], want = g / (1 + Math.exp(-g)) * up[i];
            assertEquals(want, slow[i], 1e-6 * Math.abs(want) + 1e-30, "scalar swiglu(" + g + ")");
            assertEquals(want, fast[i], 1e-6 * Math.abs(want) + 1e-30, "simd swiglu(" + g + ")");
        }
    }

    @Test
    void fastExpIsWithinTwoUlpOfMathExp() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(9);
        for (int i = 0; i < 1_000_000; i++) {
            float x = (float) (-87.0 * random.nextDouble());
            float want = (float) Math.exp(x), got = FastExp.exp(x);
            assertTrue(Math.abs(want - got) <= 2 * Math.ulp(want), "exp(" + x + "): " + want + " vs " + got);
        }
        org.junit.jupiter.api.Assertions.assertEquals(1f, FastExp.exp(0f));
        org.junit.jupiter.api.Assertions.assertEquals(0f, FastExp.exp(-100f));
        org.junit.jupiter.api.Assertions.assertEquals(0f, FastExp.exp(Float.NEGATIVE_INFINITY));
        for (float x : new float[] {1f, 10f, 50f, 88f}) {
            assertTrue(Math.abs((float) Math.exp(x) - FastExp.exp(x)) <= 2 * Math.ulp((float) Math.exp(x)), "exp(" + x + ")");
        }
    }
}
