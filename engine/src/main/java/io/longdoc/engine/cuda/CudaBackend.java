package io.longdoc.engine.cuda;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Rope;
import io.longdoc.engine.model.Tensor;
import io.longdoc.engine.runtime.Backend;
import io.longdoc.engine.runtime.Chunk;
import io.longdoc.engine.tokenizer.IntList;
import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUdeviceptr;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The forward pass on one GPU, step for step the same as the CPU backend: BF16 weights uploaded
 * once (Q/K/V fused into one matrix, gate/up into one, the Index lm_head rows normalised at
 * upload), every linear layer a cuBLAS GEMM with FP32 accumulation, the FP32 residual stream, and
 * a BF16 paged KV cache in one pool sized from free GPU memory. The scheduler and the block
 * accounting are the shared ones: this class only computes a step.
 */
public final class CudaBackend implements Backend {
    private static final Logger LOG = LoggerFactory.getLogger(CudaBackend.class);
    private static final int MAX_SPLITS = 16;

    private final ModelConfig c;
    private final CudaDevice gpu;
    private final CudaOps ops;
    private final Rope rope;
    private final float[] lmHeadRowScale;   // CPU-side copy, applied at upload
    private final int blockSize, blocks, maxTokens;
    private final int qDim, kvDim, qkvDim, hidden, dim, vocab;
    private final int streamingMultiprocessors;
    private final int maxDecodeTiles;          // decode tokens per step: at most one per sequence

    // Weights on the device.
    private final CUdeviceptr embedding;       // (vocab, D) BF16
    private final CUdeviceptr lmHead;          // (vocab, D) BF16, row-normalised for Index
    private final CUdeviceptr finalNorm;       // (D) FP32
    private final CUdeviceptr[] attnNorm, ffnNorm;   // per layer (D) FP32
    private final CUdeviceptr[] wqkv;          // per layer (Q + 2K, D) BF16
    private final CUdeviceptr[] wo;            // per layer (D, Q) BF16
    private final CUdeviceptr[] wGateUp;       // per layer (2F, D) BF16
    private final CUdeviceptr[] wDown;         // per layer (D, F) BF16
    private final CUdeviceptr[] kCache, vCache;      // per layer (blocks * blockSize, K) BF16

    // Activations for up to maxTokens tokens per step.
    private final CUdeviceptr x;               // (T, D) FP32 residual stream
    private final CUdeviceptr xb;              // (T, D) BF16 normed input of a GEMM
    private final CUdeviceptr qkv;             // (T, Q + 2K) FP32
    private final CUdeviceptr att;             // (T, Q) BF16
    private final CUdeviceptr gateUp;          // (T, 2F) FP32
    private final CUdeviceptr act;             // (T, F) BF16
    private final CUdeviceptr partO, partM, partL;   // split-K partials (splits, T, heads[, headDim]) FP32
    private final CUdeviceptr cos, sin;        // (T, headDim/2) FP32
    private final CUdeviceptr ints;            // the step's int32 inputs, packed (see forward)
    private final java.nio.ByteBuffer intsPinned;  // their page-locked host staging
    private final int intsCapacity;
    private CUdeviceptr sampleWords, sampleFloats, sampleInts, sampleLongs, sampled;   // sampling inputs and output, grown on demand
    private java.nio.ByteBuffer samplePinned;
    private int sampleCapacity;
    private CUdeviceptr logitRows, logits;     // (W, D) FP32 and (W, vocab) FP32, grown on demand
    private int logitCapacity;

    /**
     * @param memoryFraction share of the GPU's memory the engine may use in all (weights,
     *     activations, KV cache), like vLLM's gpu_memory_utilization
     * @param maxKvBlocks the most KV blocks worth having (sequences in flight × context)
     */
    public CudaBackend(LlamaWeights w, int device, int blockSize, int maxTokensPerStep, int maxSequences, double memoryFraction,
                       int maxKvBlocks) {
        this.c = w.config;
        if (c.headDim() > CudaOps.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("CUDA backend: head dimension " + c.headDim() + " is above the kernels' " + CudaOps.MAX_HEAD_DIM);
        }
        if ((long) maxTokensPerStep * c.vocabSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("CUDA backend: " + maxTokensPerStep + " tokens per step × vocabulary " + c.vocabSize()
                    + " logits do not fit one array; lower longdoc.engine.max-tokens-per-step");
        }
        this.gpu = new CudaDevice(device);
        try {
            this.maxDecodeTiles = Math.max(1, Math.min(maxSequences, maxTokensPerStep));
            this.ops = new CudaOps(gpu);
            this.rope = new Rope(c);
            this.lmHeadRowScale = w.lmHeadRowScale;
            this.blockSize = blockSize;
            this.maxTokens = maxTokensPerStep;
            this.dim = c.dim();
            this.qDim = c.qDim();
            this.kvDim = c.kvDim();
            this.qkvDim = qDim + 2 * kvDim;
            this.hidden = c.hiddenDim();
            this.vocab = c.vocabSize();
            int[] sms = new int[1];
            jcuda.driver.CUdevice d = new jcuda.driver.CUdevice();
            jcuda.driver.JCudaDriver.cuDeviceGet(d, device);
            jcuda.driver.JCudaDriver.cuDeviceGetAttribute(sms, jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d);
            this.streamingMultiprocessors = sms[0];

            // Weights, once, as BF16.
            embedding = uploadBf16(w.embedding, null);
            lmHead = (w.lmHead == w.embedding && w.lmHeadRowScale == null) ? embedding : uploadBf16(w.lmHead, w.lmHeadRowScale);
            finalNorm = uploadF32(w.finalNorm);
            int layers = c.layers();
            attnNorm = new CUdeviceptr[layers];
            ffnNorm = new CUdeviceptr[layers];
            wqkv = new CUdeviceptr[layers];
            wo = new CUdeviceptr[layers];
            wGateUp = new CUdeviceptr[layers];
            wDown = new CUdeviceptr[layers];
            for (int l = 0; l < layers; l++) {
                LlamaWeights.Layer layer = w.layers[l];
                attnNorm[l] = uploadF32(layer.attnNorm);
                ffnNorm[l] = uploadF32(layer.ffnNorm);
                wqkv[l] = uploadBf16Stacked(layer.wq, layer.wk, layer.wv);
                wo[l] = uploadBf16(layer.wo, null);
                wGateUp[l] = uploadBf16Stacked(layer.gate, layer.up);
                wDown[l] = uploadBf16(layer.down, null);
            }

            // Activations.
            long t = maxTokensPerStep;
            x = gpu.allocate(t * dim * 4);
            xb = gpu.allocate(t * Math.max(dim, qDim) * 2);
            qkv = gpu.allocate(t * qkvDim * 4);
            att = gpu.allocate(t * qDim * 2);
            gateUp = gpu.allocate(t * 2L * hidden * 4);
            act = gpu.allocate(t * hidden * 2);
            partO = gpu.allocate((long) MAX_SPLITS * maxDecodeTiles * qDim * 4);   // split-K partials: decode tiles only
            partM = gpu.allocate((long) MAX_SPLITS * maxDecodeTiles * c.heads() * 4);
            partL = gpu.allocate((long) MAX_SPLITS * maxDecodeTiles * c.heads() * 4);
            cos = gpu.allocate(t * (c.headDim() / 2) * 4);
            sin = gpu.allocate(t * (c.headDim() / 2) * 4);
            intsCapacity = (int) (16 * t + 4L * maxKvBlocks + 1024);
            ints = gpu.allocate((long) intsCapacity * 4);
            intsPinned = gpu.allocatePinned(4L * intsCapacity);
            growLogits(Math.min(maxTokensPerStep, 64));

            // The KV pool: what the memory fraction leaves, capped at what is worth having.
            long[] mem = gpu.memoryInfo();
            long used = mem[1] - mem[0];
            long budget = (long) (memoryFraction * mem[1]) - used;
            long perBlock = 2L * layers * blockSize * kvDim * 2;
            long fit = budget / perBlock;
            if (fit < 1) {
                throw new IllegalStateException(String.format("CUDA backend: no GPU memory left for the KV cache (%.1f GiB of %.1f GiB in use, "
                        + "memory fraction %.2f); raise longdoc.engine.gpu-memory-fraction", used / 1073741824.0, mem[1] / 1073741824.0, memoryFraction));
            }
            this.blocks = (int) Math.min(Math.min(fit, maxKvBlocks), Integer.MAX_VALUE / blockSize);
            long weightsAndActivations = gpu.allocatedBytes();
            kCache = new CUdeviceptr[layers];
            vCache = new CUdeviceptr[layers];
            for (int l = 0; l < layers; l++) {
                kCache[l] = gpu.allocate((long) blocks * blockSize * kvDim * 2);
                vCache[l] = gpu.allocate((long) blocks * blockSize * kvDim * 2);
            }
            LOG.info(String.format("CUDA backend on %s (device %d): weights and activations %.2f GiB, KV cache %d blocks × %d tokens = %.2f GiB",
                    gpu.name(), device, weightsAndActivations / 1073741824.0, blocks, blockSize,
                    (double) blocks * perBlock / 1073741824.0));
        } catch (RuntimeException | Error e) {
            gpu.close();   // the context, the stream and everything allocated so far
            throw e;
        }
    }

    /** KV cache bytes per token on the GPU (all layers, keys and values, BF16). */
    public static long kvBytesPerToken(ModelConfig c) {
        return 2L * c.layers() * c.kvDim() * 2;
    }

    private CUdeviceptr uploadF32(float[] v) {
        CUdeviceptr p = gpu.allocate((long) v.length * 4);
        gpu.upload(p, v, v.length);
        return p;
    }

    private CUdeviceptr uploadBf16(Tensor t, float[] rowScale) {
        return uploadBf16Stacked(rowScale, t);
    }

    private CUdeviceptr uploadBf16Stacked(Tensor... parts) {
        return uploadBf16Stacked((float[]) null, parts);
    }

    /** Uploads the tensors' rows one after another as one BF16 matrix, converting a slice of rows at a time. */
    private CUdeviceptr uploadBf16Stacked(float[] rowScale, Tensor... parts) {
        long rows = 0;
        int cols = parts[0].cols();
        for (Tensor t : parts) {
            if (t.cols() != cols) {
                throw new IllegalArgumentException("cannot stack " + t.name + ": " + t.cols() + " columns, expected " + cols);
            }
            rows += t.rows();
        }
        CUdeviceptr p = gpu.allocate(rows * cols * 2);
        int sliceRows = Math.max(1, (1 << 20) / cols);
        float[] f = new float[sliceRows * cols];
        short[] scratch = new short[sliceRows * cols];
        short[] h = new short[sliceRows * cols];
        long row = 0;
        for (Tensor t : parts) {
            for (int r = 0; r < t.rows(); r += sliceRows) {
                int n = Math.min(sliceRows, t.rows() - r);
                t.readRows(r, n, f, scratch);
                for (int i = 0; i < n * cols; i++) {
                    float v = f[i];
                    if (rowScale != null) {
                        v *= rowScale[r + i / cols];
                    }
                    h[i] = Bf16.fromFloat(v);
                }
                jcuda.driver.JCudaDriver.cuMemcpyHtoD(p.withByteOffset(row * cols * 2), jcuda.Pointer.to(h), (long) n * cols * 2);
                row += n;
            }
        }
        return p;
    }

    private void growLogits(int rows) {
        if (rows <= logitCapacity) {
            return;
        }
        if (logits != null) {
            gpu.free(logits);
            gpu.free(logitRows);
        }
        logitCapacity = Math.max(rows, logitCapacity * 2);
        logitRows = gpu.allocate((long) logitCapacity * dim * 4);
        logits = gpu.allocate((long) logitCapacity * vocab * 4);
    }

    @Override
    public ModelConfig config() {
        return c;
    }

    @Override
    public String name() {
        return "cuda (" + gpu.name() + ", device " + gpu.ordinal() + ")";
    }

    @Override
    public int kvBlocks() {
        return blocks;
    }

    @Override
    public int kvBlockSize() {
        return blockSize;
    }

    @Override
    public float[][] forward(List<Chunk> chunks) {
        int wanted = runStep(chunks);
        float[] host = new float[wanted * vocab];
        gpu.download(host, logits, host.length);
        float[][] out = new float[wanted][vocab];
        for (int i = 0; i < wanted; i++) {
            System.arraycopy(host, i * vocab, out[i], 0, vocab);
        }
        return out;
    }

    @Override
    public boolean samplesOnDevice() {
        return true;
    }

    /** The step, then sample_kernel on its logits: only the chosen ids come back. */
    @Override
    public int[] forwardAndSample(List<Chunk> chunks, List<DeviceSample> rows) {
        int wanted = runStep(chunks);
        if (wanted != rows.size()) {
            throw new IllegalArgumentException(rows.size() + " sampling rows for " + wanted + " logit rows");
        }
        if (wanted == 0) {
            return new int[0];
        }
        int words = (vocab + 31) / 32;
        growSampling(wanted, words);
        // Packed into the pinned buffer: seen words, then floats, ints and longs, each region 8-byte aligned.
        java.nio.ByteBuffer b = samplePinned;
        b.clear();
        int[] empty = new int[words];
        for (DeviceSample r : rows) {
            int[] seen = r.seenWords() != null ? r.seenWords() : empty;
            for (int w = 0; w < words; w++) {
                b.putInt(w < seen.length ? seen[w] : 0);
            }
        }
        long wordsBytes = 4L * words * wanted;
        gpu.uploadAsync(sampleWords, gpu.pinnedSlice(b, 0, wordsBytes), wordsBytes);   // fresh slices: position 0 is the start
        java.nio.ByteBuffer f = gpu.pinnedSlice(b, wordsBytes, 12L * wanted);
        for (DeviceSample r : rows) {
            f.putFloat(r.params().temperature());
        }
        for (DeviceSample r : rows) {
            f.putFloat(r.params().topP());
        }
        for (DeviceSample r : rows) {
            f.putFloat(r.params().repetitionPenalty());
        }
        gpu.uploadAsync(sampleFloats, gpu.pinnedSlice(b, wordsBytes, 12L * wanted), 12L * wanted);
        long intsAt = wordsBytes + 16L * wanted;
        java.nio.ByteBuffer in = gpu.pinnedSlice(b, intsAt, 4L * wanted);
        for (DeviceSample r : rows) {
            in.putInt(r.params().topK());
        }
        gpu.uploadAsync(sampleInts, gpu.pinnedSlice(b, intsAt, 4L * wanted), 4L * wanted);
        long longsAt = intsAt + 8L * wanted;
        java.nio.ByteBuffer l = gpu.pinnedSlice(b, longsAt, 16L * wanted);
        for (DeviceSample r : rows) {
            l.putLong(r.params().seed());
        }
        for (DeviceSample r : rows) {
            l.putLong(r.draw());
        }
        gpu.uploadAsync(sampleLongs, gpu.pinnedSlice(b, longsAt, 16L * wanted), 16L * wanted);
        ops.sample(logits, wanted, vocab, new CudaOps.SampleInputs(sampleWords, words, sampleFloats, sampleInts,
                sampleFloats.withByteOffset(4L * wanted), sampleFloats.withByteOffset(8L * wanted), sampleLongs,
                sampleLongs.withByteOffset(8L * wanted)), sampled);
        java.nio.ByteBuffer ids = gpu.pinnedSlice(b, longsAt + 16L * wanted, 4L * wanted);
        gpu.downloadAsync(ids, sampled, 4L * wanted);
        gpu.synchronize();
        int[] out = new int[wanted];
        ids.asIntBuffer().get(out);
        return out;
    }

    private void growSampling(int rows, int words) {
        if (rows <= sampleCapacity) {
            return;
        }
        if (sampleWords != null) {
            for (CUdeviceptr p : new CUdeviceptr[] {sampleWords, sampleFloats, sampleInts, sampleLongs, sampled}) {
                gpu.free(p);
            }
            gpu.freePinned(samplePinned);
        }
        sampleCapacity = Math.max(rows, 2 * sampleCapacity);
        sampleWords = gpu.allocate(4L * words * sampleCapacity);
        sampleFloats = gpu.allocate(12L * sampleCapacity);
        sampleInts = gpu.allocate(4L * sampleCapacity);
        sampleLongs = gpu.allocate(16L * sampleCapacity);
        sampled = gpu.allocate(4L * sampleCapacity);
        samplePinned = gpu.allocatePinned(4L * words * sampleCapacity + 48L * sampleCapacity + 64);
    }

    /** Runs the step up to the LM head; leaves the wanted rows' logits (W, vocab) on the device and returns W. */
    private int runStep(List<Chunk> chunks) {
        gpu.makeCurrent();
        int tokens = 0, wanted = 0;
        for (Chunk ch : chunks) {
            tokens += ch.tokens().length;
            wanted += ch.logitsAt().length;
        }
        if (tokens > maxTokens) {
            throw new IllegalArgumentException("step of " + tokens + " tokens is above the CUDA backend's " + maxTokens);
        }
        int half = c.headDim() / 2;
        int[] ids = new int[tokens], slot = new int[tokens], pos = new int[tokens], rows = new int[wanted];
        float[] cosHost = new float[tokens * half], sinHost = new float[tokens * half];
        IntList seqTableStart = new IntList(), tables = new IntList();
        List<int[]> prefillTiles = new ArrayList<>(), decodeTiles = new ArrayList<>();   // {seq, first, count}
        float[] cosRow = new float[half], sinRow = new float[half];
        int t = 0, r = 0, maxDecodePos = 0;
        for (int s = 0; s < chunks.size(); s++) {
            Chunk ch = chunks.get(s);
            seqTableStart.add(tables.size());
            tables.addAll(ch.blockTable());
            int first = t;
            for (int i = 0; i < ch.tokens().length; i++, t++) {
                int id = ch.tokens()[i];
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (size " + vocab + ")");
                }
                ids[t] = id;
                pos[t] = ch.startPos() + i;
                slot[t] = ch.blockTable()[pos[t] / blockSize] * blockSize + pos[t] % blockSize;
                rope.angles(pos[t], ch.ropeSeqLen(), cosRow, sinRow);
                System.arraycopy(cosRow, 0, cosHost, t * half, half);
                System.arraycopy(sinRow, 0, sinHost, t * half, half);
            }
            for (int at : ch.logitsAt()) {
                rows[r++] = first + at;
            }
            int n = ch.tokens().length;
            if (n == 1) {
                decodeTiles.add(new int[] {s, first, 1});
                maxDecodePos = Math.max(maxDecodePos, pos[first]);
            } else {
                for (int k = 0; k < n; k += CudaOps.ATTENTION_TILE_ROWS) {
                    prefillTiles.add(new int[] {s, first + k, Math.min(CudaOps.ATTENTION_TILE_ROWS, n - k)});
                }
            }
        }
        // Split-K for decode when its (sequence, head) blocks would leave most of the GPU idle.
        int splits = 1;
        int decodeBlocks = decodeTiles.size() * c.heads();
        if (!decodeTiles.isEmpty() && decodeTiles.size() <= maxDecodeTiles && decodeBlocks < 2 * streamingMultiprocessors) {
            int keyTiles = (maxDecodePos + CudaOps.ATTENTION_KEY_TILE) / CudaOps.ATTENTION_KEY_TILE;
            splits = Math.max(1, Math.min(Math.min(MAX_SPLITS, keyTiles), (2 * streamingMultiprocessors + decodeBlocks - 1) / decodeBlocks));
        }
        int splitLen = ((maxDecodePos + 1 + splits - 1) / splits + CudaOps.ATTENTION_KEY_TILE - 1)
                / CudaOps.ATTENTION_KEY_TILE * CudaOps.ATTENTION_KEY_TILE;

        // One upload for every int input of the step, packed; each array's offset is kept for its kernel.
        IntList packed = new IntList();
        int idsAt = add(packed, ids), slotAt = add(packed, slot), posAt = add(packed, pos), rowsAt = add(packed, rows);
        int tablesAt = add(packed, tables.toArray()), startsAt = add(packed, seqTableStart.toArray());
        int[] prefillAt = addTiles(packed, prefillTiles), decodeAt = addTiles(packed, decodeTiles);
        int mergeAt = add(packed, decodeTiles.stream().mapToInt(d -> d[1]).toArray());
        int[] all = packed.toArray();
        if (all.length > intsCapacity) {
            throw new IllegalArgumentException("step inputs of " + all.length + " ints exceed the CUDA backend's buffer of " + intsCapacity);
        }
        intsPinned.asIntBuffer().put(all);   // a fresh view: the buffer itself stays at position 0
        gpu.uploadAsync(ints, intsPinned, 4L * all.length);
        gpu.upload(cos, cosHost, cosHost.length);
        gpu.upload(sin, sinHost, sinHost.length);
        CudaOps.AttentionInputs attentionInputs = new CudaOps.AttentionInputs(at(tablesAt), at(startsAt), at(posAt), blockSize);

        // Embedding lookup.                                          x: (T, D) FP32
        ops.embeddingGather(embedding, at(idsAt), x, tokens, dim);

        for (int l = 0; l < c.layers(); l++) {
            // Attention: RMSNorm, then q, k, v in one GEMM.            xb: (T, D) BF16   qkv: (T, Q + 2K) FP32
            ops.rmsNorm(x, attnNorm[l], xb, tokens, dim, (float) c.normEps());
            ops.gemm(wqkv[l], xb, qkv, tokens, qkvDim, dim, false);

            // RoPE on q and k, then k and v into the cache at each token's slot.
            ops.ropeAndCache(qkv, cos, sin, at(slotAt), kCache[l], vCache[l], tokens, c.heads(), c.kvHeads(), c.headDim());

            // Causal attention over the cache: prefill tiles whole, decode tokens split-K then merged.   att: (T, Q) BF16
            ops.attention(qkv, qkvDim, kCache[l], vCache[l], kvDim, attentionInputs, at(prefillAt[0]), at(prefillAt[1]), at(prefillAt[2]),
                    prefillTiles.size(), c.heads(), c.kvHeads(), c.headDim(), c.slidingWindow(), 1, Integer.MAX_VALUE / 2,
                    att, qDim, partO, partM, partL);
            ops.attention(qkv, qkvDim, kCache[l], vCache[l], kvDim, attentionInputs, at(decodeAt[0]), at(decodeAt[1]), at(decodeAt[2]),
                    decodeTiles.size(), c.heads(), c.kvHeads(), c.headDim(), c.slidingWindow(), splits, splitLen,
                    att, qDim, partO, partM, partL);
            if (splits > 1) {
                ops.attentionMerge(partO, partM, partL, at(mergeAt), decodeTiles.size(), splits, c.heads(), c.headDim(), att, qDim);
            }

            // Output projection; the GEMM adds into x (the residual). x += att · woᵀ
            ops.gemm(wo[l], att, x, tokens, dim, qDim, true);

            // Feed-forward: RMSNorm, gate and up in one GEMM, SwiGLU, down projection added into x.
            ops.rmsNorm(x, ffnNorm[l], xb, tokens, dim, (float) c.normEps());
            ops.gemm(wGateUp[l], xb, gateUp, tokens, 2 * hidden, dim, false);   // gateUp: (T, 2F) FP32
            ops.swiglu(gateUp, act, tokens, hidden);                           // act: (T, F) BF16
            ops.gemm(wDown[l], act, x, tokens, dim, hidden, true);
        }

        // Final norm and LM head, only for the rows whose logits are wanted.   logits: (W, V) FP32
        growLogits(wanted);
        ops.gatherRows(x, at(rowsAt), logitRows, wanted, dim);
        ops.rmsNorm(logitRows, finalNorm, xb, wanted, dim, (float) c.normEps());
        ops.gemm(lmHead, xb, logits, wanted, vocab, dim, false);
        return wanted;
    }

    private static int add(IntList packed, int[] values) {
        int at = packed.size();
        packed.addAll(values);
        return at;
    }

    private static int[] addTiles(IntList packed, List<int[]> tiles) {
        return new int[] {
            add(packed, tiles.stream().mapToInt(x -> x[0]).toArray()),
            add(packed, tiles.stream().mapToInt(x -> x[1]).toArray()),
            add(packed, tiles.stream().mapToInt(x -> x[2]).toArray())};
    }

    private CUdeviceptr at(int intOffset) {
        return ints.withByteOffset(4L * intOffset);
    }

    @Override
    public void close() {
        gpu.close();
    }
}
