package io.longdoc.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.Rope;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every kernel against its CPU twin on random inputs: odd sizes, GQA ratios 1/2/4/8, RoPE
 * positions past 16K, masked tails, one and many sequences. Tolerances, per output type:
 * BF16 outputs within 1/128 relative (one BF16 step) plus 1e-3 absolute; FP32 outputs of FP32
 * arithmetic within 1e-5 relative; GEMM (BF16 inputs, FP32 accumulation) within 1e-3 of the row
 * scale; attention (BF16 K/V and output, fast exp) within 2e-2 absolute on values of size ~1.
 */
class CudaKernelParityTest {
    private static CudaDevice gpu;
    private static CudaOps ops;
    private final SplittableRandom random = new SplittableRandom(20261129);

    @BeforeAll
    static void open() {
        if (CudaDevice.probe() == null) {
            gpu = new CudaDevice(0);
            ops = new CudaOps(gpu);
        }
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    private float[] randoms(int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    private CUdeviceptr f32(float[] v) {
        CUdeviceptr p = gpu.allocate(4L * v.length);
        gpu.upload(p, v, v.length);
        return p;
    }

    private CUdeviceptr ints(int[] v) {
        CUdeviceptr p = gpu.allocate(4L * Math.max(1, v.length));
        gpu.upload(p, v, v.length);
        return p;
    }

    private CUdeviceptr bf16(float[] v) {
        short[] h = new short[v.length];
        for (int i = 0; i < v.length; i++) {
            h[i] = Bf16.fromFloat(v[i]);
        }
        CUdeviceptr p = gpu.allocate(2L * v.length);
        gpu.upload(p, h, h.length);
        return p;
    }

    private float[] readF32(CUdeviceptr p, int n) {
        float[] v = new float[n];
        gpu.download(v, p, n);
        return v;
    }

    private float[] readBf16(CUdeviceptr p, int n) {
        short[] h = new short[n];
        gpu.download(h, p, n);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = Bf16.toFloat(h[i]);
        }
        return v;
    }

    private static void assertClose(float[] want, float[] got, double rel, double abs, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            double tol = abs + rel * Math.abs(want[i]);
            assertTrue(Math.abs(want[i] - got[i]) <= tol, what + "[" + i + "]: want " + want[i] + ", got " + got[i]);
        }
    }

    @Test
    void rmsNormMatchesCpu() {
        Gpu.require();
        int rows = 7, dim = 333;
        float[] x = randoms(rows * dim, 3), w = randoms(dim, 1);
        CUdeviceptr out = gpu.allocate(2L * rows * dim);
        ops.rmsNorm(f32(x), f32(w), out, rows, dim, 1e-5f);
        float[] want = new float[rows * dim];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) {
                ss += x[r * dim + i] * x[r * dim + i];
            }
            float scale = (float) (1 / Math.sqrt(ss / dim + 1e-5));
            for (int i = 0; i < dim; i++) {
                want[r * dim + i] = Bf16.round(x[r * dim + i] * scale * w[i]);
            }
        }
        assertClose(want, readBf16(out, rows * dim), 1.0 / 128, 1e-3, "rmsnorm");
    }

    @Test
    void embeddingAndRowGatherAreExact() {
        Gpu.require();
        int vocab = 101, dim = 77;
        float[] table = randoms(vocab * dim, 1);
        int[] ids = {5, 0, 100, 5, 42};
        CUdeviceptr x = gpu.allocate(4L * ids.length * dim);
        ops.embeddingGather(bf16(table), ints(ids), x, ids.length, dim);
        float[] got = readF32(x, ids.length * dim);
        for (int t = 0; t < ids.length; t++) {
            for (int d = 0; d < dim; d++) {
                assertEquals(Bf16.round(table[ids[t] * dim + d]), got[t * dim + d]);
            }
        }
        int[] rows = {4, 1};
        CUdeviceptr out = gpu.allocate(4L * rows.length * dim);
        ops.gatherRows(x, ints(rows), out, rows.length, dim);
        float[] gathered = readF32(out, rows.length * dim);
        for (int i = 0; i < rows.length; i++) {
            for (int d = 0; d < dim; d++) {
                assertEquals(got[rows[i] * dim + d], gathered[i * dim + d]);
            }
        }
    }

    @Test
    void ropeAndCacheMatchCpuPastSixteenK() {
        Gpu.require();
        int tokens = 5, heads = 8, kvHeads = 2, headDim = 64, half = headDim / 2;
        int qDim = heads * headDim, kvDim = kvHeads * headDim, stride = qDim + 2 * kvDim;
        float[] qkv = randoms(tokens * stride, 2);
        int[] positions = {0, 1, 8191, 16385, 32767};
        float[] cos = new float[tokens * half], sin = new float[tokens * half];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < half; i++) {
                double angle = positions[t] * Math.pow(320000.0, -2.0 * i / headDim);
                cos[t * half + i] = (float) Math.cos(angle);
                sin[t * half + i] = (float) Math.sin(angle);
            }
        }
        int[] slots = {9, 3, 0, 7, 12};
        int cacheSlots = 16;
        CUdeviceptr dQkv = f32(qkv), kCache = gpu.allocate(2L * cacheSlots * kvDim), vCache = gpu.allocate(2L * cacheSlots * kvDim);
        ops.ropeAndCache(dQkv, f32(cos), f32(sin), ints(slots), kCache, vCache, tokens, heads, kvHeads, headDim);
        float[] got = readF32(dQkv, tokens * stride);
        float[] k = readBf16(kCache, cacheSlots * kvDim), v = readBf16(vCache, cacheSlots * kvDim);
        for (int t = 0; t < tokens; t++) {
            float[] row = java.util.Arrays.copyOfRange(qkv, t * stride, (t + 1) * stride);
            float[] c = java.util.Arrays.copyOfRange(cos, t * half, (t + 1) * half), s = java.util.Arrays.copyOfRange(sin, t * half, (t + 1) * half);
            for (int h = 0; h < heads + kvHeads; h++) {
                Rope.rotate(row, h * headDim, headDim, c, s);
            }
            assertClose(java.util.Arrays.copyOfRange(row, 0, qDim + kvDim), java.util.Arrays.copyOfRange(got, t * stride, t * stride + qDim + kvDim),
                    1e-5, 1e-6, "rotated q|k of token " + t);
            for (int i = 0; i < kvDim; i++) {
                assertEquals(Bf16.round(row[qDim + i]), k[slots[t] * kvDim + i], 1e-2 * Math.abs(row[qDim + i]) + 1e-3, "cached k");
                assertEquals(Bf16.round(row[qDim + kvDim + i]), v[slots[t] * kvDim + i], "cached v");
            }
        }
    }

    @Test
    void swigluMatchesCpu() {
        Gpu.require();
        int tokens = 3, hidden = 1001;
        float[] gu = randoms(tokens * 2 * hidden, 4);
        CUdeviceptr out = gpu.allocate(2L * tokens * hidden);
        ops.swiglu(f32(gu), out, tokens, hidden);
        float[] want = new float[tokens * hidden];
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < hidden; j++) {
                float g = gu[t * 2 * hidden + j], u = gu[t * 2 * hidden + hidden + j];
                want[t * hidden + j] = Bf16.round((float) (g / (1 + Math.exp(-g)) * u));
            }
        }
        assertClose(want, readBf16(out, tokens * hidden), 2.0 / 128, 1e-3, "swiglu");
    }

    @Test
    void gemmMatchesCpuWithAndWithoutAccumulate() {
        Gpu.require();
        int rows = 5, n = 257, k = 300;
        float[] w = randoms(n * k, 0.1), x = randoms(rows * k, 1), y0 = randoms(rows * n, 1);
        for (boolean accumulate : new boolean[] {false, true}) {
            CUdeviceptr y = f32(y0);
            ops.gemm(bf16(w), bf16(x), y, rows, n, k, accumulate);
            float[] got = readF32(y, rows * n);
            float[] want = new float[rows * n];
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < n; j++) {
                    double acc = accumulate ? y0[r * n + j] : 0;
                    for (int i = 0; i < k; i++) {
                        acc += (double) Bf16.round(w[j * k + i]) * Bf16.round(x[r * k + i]);
                    }
                    want[r * n + j] = (float) acc;
                }
            }
            assertClose(want, got, 1e-3, 1e-3, "gemm accumulate=" + accumulate);
        }
    }

    @Test
    void attentionMatchesCpuForPrefillDecodeSplitsGqaAndWindow() {
        Gpu.require();
        for (int group : new int[] {1, 2, 4, 8}) {
            for (int headDim : new int[] {40, 128}) {
                for (int window : new int[] {0, 37}) {
                    attentionCase(group, headDim, window);
                }
            }
        }
    }

    /** Three sequences in one step: a prefill chunk of 37 tokens after 100 cached, a decode at 300, a decode at position 0. */
    private void attentionCase(int group, int headDim, int window) {
        int kvHeads = 2, heads = kvHeads * group, blockSize = 16;
        int qDim = heads * headDim, kvDim = kvHeads * headDim, stride = qDim + 2 * kvDim;
        int[][] chunk = {{100, 37}, {300, 1}, {0, 1}};   // {start position, tokens}
        int tokens = 39;
        // Paged cache: each sequence's blocks scattered in reverse order over the pool.
        int blocksPerSeq = (301 + blockSize - 1) / blockSize + 1, pool = 3 * blocksPerSeq;
        int[][] table = new int[3][blocksPerSeq];
        for (int s = 0; s < 3; s++) {
            for (int b = 0; b < blocksPerSeq; b++) {
                table[s][b] = pool - 1 - (b * 3 + s);
            }
        }
        float[] kPool = randoms(pool * blockSize * kvDim, 1), vPool = randoms(pool * blockSize * kvDim, 1);
        for (int i = 0; i < kPool.length; i++) {
            kPool[i] = Bf16.round(kPool[i]);
            vPool[i] = Bf16.round(vPool[i]);
        }
        float[] qkv = randoms(tokens * stride, 1);
        int[] pos = new int[tokens], seqOf = new int[tokens];
        List<int[]> prefill = new ArrayList<>(), decode = new ArrayList<>();
        int t = 0;
        for (int s = 0; s < 3; s++) {
            int first = t;
            for (int i = 0; i < chunk[s][1]; i++, t++) {
                pos[t] = chunk[s][0] + i;
                seqOf[t] = s;
            }
            if (chunk[s][1] == 1) {
                decode.add(new int[] {s, first, 1});
            } else {
                for (int i = 0; i < chunk[s][1]; i += CudaOps.ATTENTION_TILE_ROWS) {
                    prefill.add(new int[] {s, first + i, Math.min(CudaOps.ATTENTION_TILE_ROWS, chunk[s][1] - i)});
                }
            }
        }
        int[] flatTables = new int[3 * blocksPerSeq], starts = {0, blocksPerSeq, 2 * blocksPerSeq};
        for (int s = 0; s < 3; s++) {
            System.arraycopy(table[s], 0, flatTables, s * blocksPerSeq, blocksPerSeq);
        }
        CudaOps.AttentionInputs in = new CudaOps.AttentionInputs(ints(flatTables), ints(starts), ints(pos), blockSize);
        CUdeviceptr dQkv = f32(qkv), kCache = bf16(kPool), vCache = bf16(vPool);
        CUdeviceptr out = gpu.allocate(2L * tokens * qDim);
        int splits = 4, splitLen = 128;
        CUdeviceptr partO = gpu.allocate(4L * splits * 2 * qDim), partM = gpu.allocate(4L * splits * 2 * heads),
                partL = gpu.allocate(4L * splits * 2 * heads);   // two decode tiles
        CUdeviceptr[] pt = tiles(prefill), dt = tiles(decode);
        ops.attention(dQkv, stride, kCache, vCache, kvDim, in, pt[0], pt[1], pt[2], prefill.size(), heads, kvHeads, headDim, window,
                1, Integer.MAX_VALUE / 2, out, qDim, partO, partM, partL);
        ops.attention(dQkv, stride, kCache, vCache, kvDim, in, dt[0], dt[1], dt[2], decode.size(), heads, kvHeads, headDim, window,
                splits, splitLen, out, qDim, partO, partM, partL);
        ops.attentionMerge(partO, partM, partL, ints(decode.stream().mapToInt(d -> d[1]).toArray()), decode.size(), splits,
                heads, headDim, out, qDim);
        float[] got = readBf16(out, tokens * qDim);

        // CPU twin: softmax(q·k/√d) over the visible positions, read through the block table.
        float[] want = new float[tokens * qDim];
        for (int i = 0; i < tokens; i++) {
            int s = seqOf[i];
            for (int h = 0; h < heads; h++) {
                int kvOff = (h / group) * headDim;
                int from = window > 0 ? Math.max(0, pos[i] - window + 1) : 0;
                double[] score = new double[pos[i] + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int p = from; p <= pos[i]; p++) {
                    int slot = table[s][p / blockSize] * blockSize + p % blockSize;
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) {
                        dot += qkv[i * stride + h * headDim + d] * kPool[slot * kvDim + kvOff + d];
                    }
                    score[p] = dot / Math.sqrt(headDim);
                    max = Math.max(max, score[p]);
                }
                double sum = 0;
                for (int p = from; p <= pos[i]; p++) {
                    score[p] = Math.exp(score[p] - max);
                    sum += score[p];
                }
                for (int d = 0; d < headDim; d++) {
                    double acc = 0;
                    for (int p = from; p <= pos[i]; p++) {
                        int slot = table[s][p / blockSize] * blockSize + p % blockSize;
                        acc += score[p] / sum * vPool[slot * kvDim + kvOff + d];
                    }
                    want[i * qDim + h * headDim + d] = (float) acc;
                }
            }
        }
        assertClose(want, got, 0, 2e-2, "attention group " + group + " headDim " + headDim + " window " + window);
    }

    @Test
    void samplingOnTheGpuChoosesWhatTheCpuSamplerChooses() {
        Gpu.require();
        List<io.longdoc.engine.runtime.SamplingParams> cases = List.of(
                io.longdoc.engine.runtime.SamplingParams.greedy(1),
                new io.longdoc.engine.runtime.SamplingParams(1, 0f, 0, 1f, 1.3f, 0, false, null),
                new io.longdoc.engine.runtime.SamplingParams(1, 0.8f, 0, 1f, 1f, 0, false, null),
                new io.longdoc.engine.runtime.SamplingParams(1, 1f, 40, 1f, 1f, 0, false, null),
                new io.longdoc.engine.runtime.SamplingParams(1, 0.7f, 0, 0.9f, 1f, 0, false, null),
                new io.longdoc.engine.runtime.SamplingParams(1, 1.2f, 50, 0.8f, 1.1f, 0, false, null));
        for (int vocab : new int[] {1000, 65029}) {
            int rows = 64, words = (vocab + 31) / 32;
            float[] logits = randoms(rows * vocab, 6);
            int[] seen = new int[rows * words];
            float[] temperature = new float[rows], topP = new float[rows], penalty = new float[rows];
            int[] topK = new int[rows];
            long[] seed = new long[rows], draw = new long[rows];
            int[] want = new int[rows];
            boolean[] greedy = new boolean[rows];
            for (int r = 0; r < rows; r++) {
                var params = cases.get(r % cases.size()).withSeed(1000 + r);
                int[] prompt = {r, 7, 99, r * 3 % vocab};
                var host = new io.longdoc.engine.runtime.Sampler(params, vocab, prompt);
                if (host.seenWords() != null) {
                    System.arraycopy(host.seenWords(), 0, seen, r * words, words);
                }
                temperature[r] = params.temperature();
                topP[r] = params.topP();
                penalty[r] = params.repetitionPenalty();
                topK[r] = params.topK();
                seed[r] = params.seed();
                draw[r] = host.draws();
                greedy[r] = params.isGreedy();
                want[r] = host.next(java.util.Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab));
            }
            CUdeviceptr longs = gpu.allocate(16L * rows);
            jcuda.driver.JCudaDriver.cuMemcpyHtoD(longs, jcuda.Pointer.to(seed), 8L * rows);
            jcuda.driver.JCudaDriver.cuMemcpyHtoD(longs.withByteOffset(8L * rows), jcuda.Pointer.to(draw), 8L * rows);
            CUdeviceptr out = gpu.allocate(4L * rows);
            ops.sample(f32(logits), rows, vocab, new CudaOps.SampleInputs(ints(seen), words, f32(temperature), ints(topK), f32(topP),
                    f32(penalty), longs, longs.withByteOffset(8L * rows)), out);
            int[] got = new int[rows];
            gpu.synchronize();
            jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(got), out, 4L * rows);
            int same = 0;
            for (int r = 0; r < rows; r++) {
                if (greedy[r]) {
                    assertEquals(want[r], got[r], "greedy row " + r);
                }
                same += want[r] == got[r] ? 1 : 0;
            }
            // Draws compare FP32 device sums with the CPU's FP64 ones: a draw on a boundary may differ.
            assertTrue(same >= rows - 2, "vocab " + vocab + ": " + same + " of " + rows + " rows chose the CPU sampler's id");
        }
    }

    private CUdeviceptr[] tiles(List<int[]> tiles) {
        return new CUdeviceptr[] {
            ints(tiles.stream().mapToInt(x -> x[0]).toArray()),
            ints(tiles.stream().mapToInt(x -> x[1]).toArray()),
            ints(tiles.stream().mapToInt(x -> x[2]).toArray())};
    }
}
