package io.longdoc.engine.cpu;

import io.longdoc.engine.model.DType;
import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Rope;
import io.longdoc.engine.model.Tensor;
import io.longdoc.engine.runtime.Backend;
import io.longdoc.engine.runtime.Chunk;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The forward pass on the CPU, in FP32, multithreaded. All tokens of a step (prefill chunks and
 * decode tokens of many sequences) go through each weight matrix together, so a weight row is
 * read from memory once per step, however many sequences are in flight.
 *
 * <p>Shapes: T = tokens in the step, D = dim, Q = heads·headDim, K = kvHeads·headDim,
 * F = intermediate size, V = vocab.
 */
public final class CpuBackend implements Backend {
    /**
     * Multiply-adds below which an operation runs on the calling thread. Since each thread streams
     * its own slice of an operation, handing one out costs about half a microsecond: with 16K,
     * stories260k (whose products are 4K–33K multiply-adds a token) decoded 19.7K tok/s one sequence
     * and 52–53K sixteen, against 17.1–17.5K and 46–47K with 256K (the earlier, shared-counter team's
     * best), in alternating runs of the engine benchmark.
     */
    private static final long PARALLEL_WORK = 1L << 14;
    /**
     * Attention is split across threads from this many query·key products on: far sooner than a
     * matrix product, because each product also costs an exponential and per-block bookkeeping
     * (measured on stories260k: at position 300 a token's forward pass went from 142 to 125 µs).
     */
    private static final long PARALLEL_ATTENTION_WORK = 1L << 14;
    /**
     * Multiply-adds in one range of rows handed to a thread, at most: the last range of a product
     * may leave the other threads idle, so ranges of a large product (the LM head, a batch of
     * tokens) stay short.
     */
    private static final long RANGE_WORK = 1L << 20;
    /**
     * Models with at most this many bytes of weights run a step of several sequences as one forward
     * pass per thread, each over its share of the sequences ({@link #forwardSplit}): their operations
     * are too short to share out one by one. Measured with stories260k (1 MB), 16 sequences of 256
     * tokens on two cores, alternating in one JVM: median 40.1K and 41.5K tok/s against 37.8K and
     * 39.1K. A model too large for the cache would stream its weights once per thread instead.
     */
    private static final long SPLIT_STEP_WEIGHT_BYTES = 4L << 20;
    /**
     * Prefill queries of one sequence attend together in tiles of this many, sharing each KV block
     * read: a prompt reads the KV cache once per tile and head, so at 8K tokens of context tiles of 16
     * streamed the 110M model's cache, 47 MB a layer, 16 times per 256-token chunk. Tiles of 64 ran
     * that chunk's step in 1.4–1.7 s against 1.8–2.1 s (alternating runs, two threads).
     */
    private static final int QUERY_TILE = 64;
    /**
     * Positions a prefill tile scores before each running-softmax update ({@link #attendTile}); the
     * tile's scores, (tile, segment), stay in the core's cache.
     */
    private static final int SEGMENT_POSITIONS = 256;
    /** A decode token's positions are shared out between threads in parts of at least this many. */
    private static final int MIN_PART_POSITIONS = 128;
    /** Weight rows are read this many floats at a time (64 KiB: stays in L2 while used). */
    private static final int ROW_BLOCK_FLOATS = 16 * 1024;

    /** Per-thread buffers for weight rows, so a step allocates no large arrays (allocation means zeroing memory). */
    private static final class Scratch {
        private float[] rows = new float[ROW_BLOCK_FLOATS];
        final float[] dot4 = new float[4];
        final float[] dot8 = new float[8];
        private float[] scores = new float[256];
        private float[] panelOut = new float[0];
        private float[] blockKeys = new float[0], blockValues = new float[0];
        final float[] tileLargest = new float[QUERY_TILE];
        final float[] tileSum = new float[QUERY_TILE];

        /** Weight rows as FP32, for one block of rows. */
        float[] rows(int n) {
            return rows = atLeast(rows, n);
        }

        /** Output of the panel kernel for one block of rows, (rows, panel width). */
        float[] panelOut(int n) {
            return panelOut = atLeast(panelOut, n);
        }

        /** One head's keys of a BF16 KV block, widened: (headDim, blockSize). */
        float[] blockKeys(int n) {
            return blockKeys = atLeast(blockKeys, n);
        }

        /** One head's values of a BF16 KV block, widened: (blockSize, headDim). */
        float[] blockValues(int n) {
            return blockValues = atLeast(blockValues, n);
        }

        /** Attention scores for one query row, grown as contexts get longer. */
        float[] scores(int n) {
            return scores = atLeast(scores, n);
        }

        /** The buffer, or a new one of at least n floats (twice the old size, so growing with the context costs few copies). */
        private static float[] atLeast(float[] buffer, int n) {
            return buffer.length >= n ? buffer : new float[Math.max(n, 2 * buffer.length)];
        }
    }

    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);
    private final ModelConfig c;
    private final LlamaWeights w;
    private final Rope rope;
    private final VectorMath math;
    private final WorkerTeam team;
    private final int blockSize;
    private final int blocks;
    /** Bytes of all weights a forward pass multiplies by (not the embedding, of which it reads single rows). */
    private final long weightBytes;
    // Keys are stored transposed within each block, (K, blockSize): scoring a block against a query
    // then reads consecutive positions per dimension, which fills SIMD lanes even for 8-wide heads.
    // The cache is FP32 (exact) or BF16 (half the memory, and half the bytes attention reads):
    // one of the two pairs of arrays exists, the other is null.
    private final float[][] keyCache;      // per layer: (blocks, K, blockSize)
    private final float[][] valueCache;    // per layer: (blocks * blockSize, K)
    private final short[][] keyCache16;    // the same layouts, BF16
    private final short[][] valueCache16;

    /** A backend with an FP32 KV cache. */
    public CpuBackend(LlamaWeights weights, int kvBlocks, int blockSize, int threads, VectorMath math) {
        this(weights, kvBlocks, blockSize, threads, math, false);
    }

    /** A backend with a BF16 KV cache when {@code bf16Cache}, else FP32. */
    public CpuBackend(LlamaWeights weights, int kvBlocks, int blockSize, int threads, VectorMath math, boolean bf16Cache) {
        this.c = weights.config;
        this.w = weights;
        this.rope = new Rope(c);
        this.math = math;
        this.team = new WorkerTeam(Math.max(1, threads));
        this.blockSize = blockSize;
        this.blocks = kvBlocks;
        long bytes = sizeOf(weights.lmHead);
        for (LlamaWeights.Layer layer : weights.layers) {
            for (Tensor t : new Tensor[] {layer.wq, layer.wk, layer.wv, layer.wo, layer.gate, layer.up, layer.down}) {
                bytes += sizeOf(t);
            }
        }
        this.weightBytes = bytes;
        long floatsPerLayer = (long) kvBlocks * blockSize * c.kvDim();
        if (floatsPerLayer > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("KV cache of " + kvBlocks + " blocks is too large for one CPU array per layer; lower the KV budget");
        }
        keyCache = bf16Cache ? null : new float[c.layers()][(int) floatsPerLayer];
        valueCache = bf16Cache ? null : new float[c.layers()][(int) floatsPerLayer];
        keyCache16 = bf16Cache ? new short[c.layers()][(int) floatsPerLayer] : null;
        valueCache16 = bf16Cache ? new short[c.layers()][(int) floatsPerLayer] : null;
    }

    private static long sizeOf(Tensor t) {
        return (long) t.rows() * t.cols() * t.dtype.bytes;
    }

    /** KV cache bytes per token (all layers, keys and values) of a BF16 cache, or else an FP32 one. */
    public static long kvBytesPerToken(ModelConfig c, boolean bf16Cache) {
        return kvBytesPerToken(c) / (bf16Cache ? 2 : 1);
    }

    /** KV cache bytes per token (all layers, keys and values, FP32). */
    public static long kvBytesPerToken(ModelConfig c) {
        return 2L * c.layers() * c.kvDim() * Float.BYTES;
    }

    @Override
    public ModelConfig config() {
        return c;
    }

    @Override
    public String name() {
        return "cpu (" + math.name() + ", " + team.size() + " threads" + (keyCache16 != null ? ", BF16 KV cache" : "") + ")";
    }

    @Override
    public int kvBlocks() {
        return blocks;
    }

    @Override
    public int kvBlockSize() {
        return blockSize;
    }

    /** Whether a step of several sequences runs as one forward pass per thread ({@link #forwardSplit}). */
    boolean splitsSteps() {
        return weightBytes <= SPLIT_STEP_WEIGHT_BYTES && team.size() > 1;
    }

    @Override
    public float[][] forward(List<Chunk> chunks) {
        if (splitsSteps() && chunks.size() > 1) {
            return forwardSplit(chunks);
        }
        return forwardTogether(chunks);
    }

    /**
     * A step of a model small enough to stay in cache: each thread runs whole forward passes for a
     * share of the step's sequences (contiguous, balanced by tokens), so the step waits for the
     * threads once, not once per operation. Logits come back in the order of the chunks.
     */
    private float[][] forwardSplit(List<Chunk> chunks) {
        int total = 0;
        for (Chunk ch : chunks) {
            total += ch.tokens().length;
        }
        int shares = Math.min(team.size(), chunks.size());
        List<List<Chunk>> share = new ArrayList<>();
        int done = 0, from = 0;
        for (int sh = 0; sh < shares; sh++) {
            // Up to the first chunk that reaches this share's part of the tokens, leaving one chunk for each later share.
            int to = from + 1;
            done += chunks.get(from).tokens().length;
            while (to < chunks.size() - (shares - 1 - sh) && done < (long) total * (sh + 1) / shares) {
                done += chunks.get(to++).tokens().length;
            }
            if (sh == shares - 1) {
                to = chunks.size();
            }
            share.add(chunks.subList(from, to));
            from = to;
        }
        float[][][] logits = new float[shares][][];
        team.run(shares, 1, (first, last) -> {
            for (int sh = first; sh < last; sh++) {
                logits[sh] = forwardTogether(share.get(sh));  // its operations run on this thread: the team is busy with this one
            }
        });
        List<float[]> all = new ArrayList<>();
        for (float[][] part : logits) {
            all.addAll(Arrays.asList(part));
        }
        return all.toArray(new float[0][]);
    }

    /** All tokens of the step through each weight matrix together, each operation split across the threads. */
    private float[][] forwardTogether(List<Chunk> chunks) {
        int tokens = 0, wanted = 0;
        for (Chunk ch : chunks) {
            tokens += ch.tokens().length;
            wanted += ch.logitsAt().length;
        }
        // Where each token of the step lives: its chunk and its position in the sequence.
        Chunk[] chunkOf = new Chunk[tokens];
        int[] posOf = new int[tokens];
        int t = 0;
        for (Chunk ch : chunks) {
            for (int i = 0; i < ch.tokens().length; i++, t++) {
                chunkOf[t] = ch;
                posOf[t] = ch.startPos() + i;
            }
        }

        // RoPE angles of each token, shared by all heads and layers.   cos, sin: (T, headDim / 2)
        float[][] cos = new float[tokens][c.headDim() / 2];
        float[][] sin = new float[tokens][c.headDim() / 2];
        for (int i = 0; i < tokens; i++) {
            rope.angles(posOf[i], chunkOf[i].ropeSeqLen(), cos[i], sin[i]);
        }

        // Embedding lookup.                                       x: (T, D)
        float[][] x = new float[tokens][c.dim()];
        short[] scratch = new short[c.dim()];
        t = 0;
        for (Chunk ch : chunks) {
            for (int id : ch.tokens()) {
                if (id < 0 || id >= c.vocabSize()) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (size " + c.vocabSize() + ")");
                }
                w.embedding.readRow(id, x[t++], scratch);
            }
        }

        for (int l = 0; l < c.layers(); l++) {
            LlamaWeights.Layer layer = w.layers[l];

            // Attention: RMSNorm, then the q/k/v projections.     xb: (T, D)   q: (T, Q)   k, v: (T, K)
            float[][] xb = rmsNorm(x, layer.attnNorm);
            float[][][] qkv = matmuls(xb, layer.wq, layer.wk, layer.wv);
            float[][] q = qkv[0], k = qkv[1], v = qkv[2];

            // RoPE on queries and keys, then keys and values into the cache at each token's position.
            for (int i = 0; i < tokens; i++) {
                for (int h = 0; h < c.heads(); h++) {
                    Rope.rotate(q[i], h * c.headDim(), c.headDim(), cos[i], sin[i]);
                }
                for (int h = 0; h < c.kvHeads(); h++) {
                    Rope.rotate(k[i], h * c.headDim(), c.headDim(), cos[i], sin[i]);
                }
                int block = chunkOf[i].blockTable()[posOf[i] / blockSize], offset = posOf[i] % blockSize;
                store(l, block * blockSize * c.kvDim() + offset, (block * blockSize + offset) * c.kvDim(), k[i], v[i]);
            }

            // Causal attention of each query over its sequence's cached keys.   att: (T, Q)
            float[][] att = attention(q, chunkOf, posOf, l);

            // Output projection and residual.                     x += att · woᵀ
            addInPlace(x, matmul(att, layer.wo));

            // Feed-forward: RMSNorm, SwiGLU, down projection, residual.   gate, up: (T, F)
            xb = rmsNorm(x, layer.ffnNorm);
            float[][][] gateUp = matmuls(xb, layer.gate, layer.up);
            float[][] gate = gateUp[0], up = gateUp[1];
            for (int i = 0; i < tokens; i++) {
                math.swiglu(gate[i], up[i], c.hiddenDim());   // gate = silu(gate) · up
            }
            addInPlace(x, matmul(gate, layer.down));
        }

        // Final norm and LM head, only where logits are wanted.   logits: (wanted, V)
        float[][] selected = new float[wanted][];
        int s = 0, base = 0;
        for (Chunk ch : chunks) {
            for (int at : ch.logitsAt()) {
                selected[s++] = x[base + at];
            }
            base += ch.tokens().length;
        }
        float[][] logits = matmul(rmsNorm(selected, w.finalNorm), w.lmHead);
        if (w.lmHeadRowScale != null) {
            for (float[] row : logits) {
                for (int j = 0; j < row.length; j++) {
                    row[j] *= w.lmHeadRowScale[j];
                }
            }
        }
        return logits;
    }

    private float[][] rmsNorm(float[][] x, float[] weight) {
        float[][] out = new float[x.length][c.dim()];
        for (int i = 0; i < x.length; i++) {
            float[] row = x[i];
            double ss = 0;
            for (float v : row) {
                ss += (double) v * v;
            }
            float scale = (float) (1.0 / Math.sqrt(ss / row.length + c.normEps()));
            for (int j = 0; j < row.length; j++) {
                out[i][j] = row[j] * scale * weight[j];
            }
        }
        return out;
    }

    private static void addInPlace(float[][] x, float[][] delta) {
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < x[i].length; j++) {
                x[i][j] += delta[i][j];
            }
        }
    }

    /** out[t][r] = Σ_j in[t][j] · W[r][j], rows of W split across threads.   in: (T, W.cols) → out: (T, W.rows) */
    float[][] matmul(float[][] in, Tensor weight) {
        return matmuls(in, weight)[0];
    }

    /**
     * {@link #matmul} of the same input by several weights (q, k and v; gate and up) as one
     * operation over all their rows: a single-token step is then fewer, longer streams of weights,
     * with one wait for the slowest thread instead of one per weight.   out[i]: (T, weights[i].rows)
     */
    float[][][] matmuls(float[][] in, Tensor... weights) {
        Tensor first = weights[0];
        int cols = first.cols();
        for (Tensor weight : weights) {
            if (weight.dtype != first.dtype && weights.length > 1) {
                // A checkpoint that mixes types within q/k/v or gate/up: one operation per weight.
                float[][][] out = new float[weights.length][][];
                for (int i = 0; i < weights.length; i++) {
                    out[i] = matmuls(in, weights[i])[0];
                }
                return out;
            }
            if (weight.cols() != cols) {
                throw new IllegalArgumentException("weights multiplied by the same input must have the same columns: "
                        + first.name + " has " + cols + ", " + weight.name + " " + weight.cols());
            }
        }
        // Where each weight's rows start in the rows of all of them.
        int[] start = new int[weights.length + 1];
        float[][][] out = new float[weights.length][][];
        for (int i = 0; i < weights.length; i++) {
            start[i + 1] = start[i] + weights[i].rows();
            out[i] = new float[in.length][weights[i].rows()];
        }
        int rows = start[weights.length];
        if (in.length == 0) {
            return out;
        }
        // 16-bit rows are widened in pairs (even values, then odd ones) with no lane moves, so the
        // tokens are put in that order too: a single token's, whose rows are read in place, and a
        // batch's when each row is whole runs of pairs, so a block of rows widens in one pass (not
        // when the panel kernel reads BF16 rows in place: it widens each value to its own column).
        boolean pairOrder = first.dtype != DType.F32 && math.readsBuffersFast() && !panelRowsInPlace(first, in.length)
                && (in.length == 1 || cols % math.pairRun() == 0 && cols <= ROW_BLOCK_FLOATS);
        float[][] tokens = in;
        if (pairOrder) {
            tokens = new float[in.length][];
            for (int i = 0; i < in.length; i++) {
                tokens[i] = math.pairOrder(in[i], cols);
            }
        }
        float[][] orderedTokens = tokens, panels = transposedPanels(tokens, cols);
        WorkerTeam.Range multiply = (from, to) -> {
            for (int i = 0; i < weights.length; i++) {
                int lo = Math.max(from, start[i]), hi = Math.min(to, start[i + 1]);
                if (lo < hi) {
                    multiplyRows(weights[i], lo - start[i], hi - start[i], orderedTokens, panels, pairOrder, out[i]);
                }
            }
        };
        if ((long) rows * cols * in.length < PARALLEL_WORK) {
            // Too small to pay for handing work to other threads (tiny models, single tokens).
            multiply.run(0, rows);
            return out;
        }
        // Several ranges per thread, so a thread slowed by another process hands its share to the
        // others; a multiple of the panel kernel's group of rows, so only a product's last range has a short group.
        int group = math.panelRows();
        int grain = Math.max(16, Math.min(rows / (team.size() * 8), (int) (RANGE_WORK / ((long) cols * in.length))));
        grain = (grain + group - 1) / group * group;
        team.run(rows, grain, multiply);
        return out;
    }

    /**
     * Whether the panel kernel reads this weight's rows in place for a batch of this many tokens (the
     * rows of a mapped file, when there are panels: see {@link #transposedPanels}). F32 rows always;
     * BF16 rows when every panel is whole and there are at most two: widening each value on the way
     * to its broadcast costs a shift or a mask per panel, so it pays while the panels are few. Measured on
     * the 110M shape with BF16 weights, two threads, alternating runs: 16 sequences' decode step
     * 420–430 against 353–356 tok/s with a block of rows widened into scratch first, a 32-token prompt
     * chunk 638–661 against 596–608; a 64-token chunk 673–683 against 701–707, and a half panel
     * (8 sequences) 181–183 against 222–231, so those widen the block.
     */
    private boolean panelRowsInPlace(Tensor weight, int tokens) {
        if (tokens < math.panelWidth() / 2 || weight.cols() > ROW_BLOCK_FLOATS || !weight.bytes().isDirect() || !math.readsPanelRowsInPlace()) {
            return false;
        }
        int full = math.panelWidth(), rest = tokens % full;
        boolean wholePanels = tokens <= 2 * full && (rest == 0 || rest > full / 2);
        return weight.dtype == DType.F32 || weight.dtype == DType.BF16 && wholePanels && weight.cols() % 2 == 0;
    }

    /**
     * The tokens in panels of {@code math.panelWidth()}, each transposed, (cols, width), for the
     * panel kernel, when there are at least half a panel's tokens; the last panel is a half or a
     * whole one, its columns past the last token zero. Fewer tokens are left to the row-dot kernels.
     * (panels, cols · width)
     */
    private float[][] transposedPanels(float[][] in, int cols) {
        int full = math.panelWidth(), half = full / 2;
        if (cols > ROW_BLOCK_FLOATS || in.length < half) {
            return new float[0][];
        }
        int whole = in.length / full, rest = in.length - whole * full;
        float[][] panels = new float[whole + (rest > 0 ? 1 : 0)][];
        for (int p = 0, first = 0; p < panels.length; p++) {
            int width = p < whole || rest > half ? full : half;
            float[] panel = panels[p] = new float[cols * width];
            for (int t = 0; t < width && first + t < in.length; t++) {
                float[] x = in[first + t];
                for (int j = 0; j < cols; j++) {
                    panel[j * width + t] = x[j];
                }
            }
            first += width;
        }
        return panels;
    }

    /**
     * out[i][r] for rows [from, to): weight rows read in blocks that stay in cache while every token
     * uses them. With {@code pairOrder}, the tokens (and panels) are in {@code math.pairOrder}'s order
     * and 16-bit rows are widened to match.
     */
    private void multiplyRows(Tensor weight, int from, int to, float[][] in, float[][] panels, boolean pairOrder, float[][] out) {
        int cols = weight.cols();
        boolean inPlace = math.readsBuffersFast() && (weight.dtype == DType.F32 ? in.length < 4 : pairOrder && in.length == 1);
        if (inPlace) {
            // Few tokens (decode): rows are read in place from the mapped file. A copy would double
            // the memory traffic, and the batched kernels below need more tokens to pay for it. 16-bit
            // rows are widened as they are read, so only a single token reads them in place.
            ByteBuffer bytes = weight.bytes();
            int rowBytes = cols * weight.dtype.bytes;
            if (weight.dtype == DType.F32) {
                // Blocks of rows that stay in cache while every token reads them.
                int block = in.length == 1 ? to - from : Math.max(1, ROW_BLOCK_FLOATS / cols);
                for (int r0 = from; r0 < to; r0 += block) {
                    int n = Math.min(block, to - r0);
                    for (int i = 0; i < in.length; i++) {
                        math.dotF32Rows(bytes, r0 * rowBytes, rowBytes, n, in[i], cols, out[i], r0);
                    }
                }
                return;
            }
            for (int r = from; r < to; r++) {
                out[0][r] = weight.dtype == DType.BF16 ? math.dotBf16(bytes, r * rowBytes, in[0], cols) : math.dotF16(bytes, r * rowBytes, in[0], cols);
            }
            return;
        }
        if (cols > ROW_BLOCK_FLOATS) {
            // Rows longer than the scratch block (hidden sizes over 16K): one row at a time.
            float[] row = new float[cols];
            short[] shorts = new short[cols];
            for (int r = from; r < to; r++) {
                weight.readRow(r, row, shorts);
                for (int i = 0; i < in.length; i++) {
                    out[i][r] = math.dot(row, 0, in[i], 0, cols);
                }
            }
            return;
        }
        int block = Math.max(1, ROW_BLOCK_FLOATS / cols);
        if (panels.length > 0) {
            // Whole groups of the panel kernel's rows, even when a group of long rows overflows the
            // usual block: a shorter group would repeat its last row (hidden sizes over 1 365).
            int group = math.panelRows();
            block = Math.max(group, block - block % group);
        }
        block = Math.min(block, to - from);
        // Panels cover every token, or none; the panel kernel reads F32 rows in place where it can,
        // and BF16 rows of a few whole panels (panelRowsInPlace); otherwise the rows are copied
        // (16-bit rows: widened) a block at a time.
        int firstLoose = panels.length > 0 ? in.length : 0;
        boolean rowsInPlace = panels.length > 0 && panelRowsInPlace(weight, in.length);
        Scratch sc = scratch.get();
        float[] rows = rowsInPlace ? null : sc.rows(block * cols);
        float[] dot4 = sc.dot4;
        float[] panelOut = sc.panelOut(block * math.panelWidth());
        for (int r0 = from; r0 < to; r0 += block) {
            int n = Math.min(block, to - r0);
            if (!rowsInPlace) {
                switch (weight.dtype) {
                    case F32 -> weight.readRows(r0, n, rows, null);  // F32 needs no 16-bit scratch
                    case BF16 -> math.bf16ToFloats(weight.bytes(), r0 * cols * 2, rows, n * cols, pairOrder);
                    case F16 -> math.f16ToFloats(weight.bytes(), r0 * cols * 2, rows, n * cols, pairOrder);
                }
            }
            // Panels of tokens: every weight value broadcast to a panel.
            for (int p = 0, first = 0; p < panels.length; p++) {
                int width = panels[p].length / cols;
                if (rowsInPlace && weight.dtype == DType.BF16) {
                    math.rowsTimesPanelBf16(weight.bytes(), r0 * cols * 2, n, cols, panels[p], width, panelOut);
                } else if (rowsInPlace) {
                    math.rowsTimesPanel(weight.bytes(), r0 * cols * Float.BYTES, n, cols, panels[p], width, panelOut);
                } else {
                    math.rowsTimesPanel(rows, 0, n, cols, panels[p], width, panelOut);
                }
                for (int t = 0; t < width && first + t < in.length; t++) {
                    float[] o = out[first + t];
                    for (int r = 0; r < n; r++) {
                        o[r0 + r] = panelOut[r * width + t];
                    }
                }
                first += width;
            }
            // Tokens past the last panel.
            int r = 0;
            if (in.length - firstLoose >= 4) {
                // Two rows × four tokens per pass: each load of a row serves four tokens, each load of a token two rows.
                float[] dot8 = sc.dot8;
                for (; r + 2 <= n; r += 2) {
                    int i = firstLoose;
                    for (; i + 4 <= in.length; i += 4) {
                        math.dot2x4(rows, r * cols, (r + 1) * cols, in[i], in[i + 1], in[i + 2], in[i + 3], cols, dot8);
                        for (int k = 0; k < 4; k++) {
                            out[i + k][r0 + r] = dot8[k];
                            out[i + k][r0 + r + 1] = dot8[4 + k];
                        }
                    }
                    for (; i < in.length; i++) {
                        out[i][r0 + r] = math.dot(rows, r * cols, in[i], 0, cols);
                        out[i][r0 + r + 1] = math.dot(rows, (r + 1) * cols, in[i], 0, cols);
                    }
                }
            }
            for (; r < n; r++) {
                int i = firstLoose;
                // Four tokens at a time share each load of the weight row.
                for (; i + 4 <= in.length; i += 4) {
                    math.dot4(rows, r * cols, in[i], in[i + 1], in[i + 2], in[i + 3], cols, dot4);
                    out[i][r0 + r] = dot4[0];
                    out[i + 1][r0 + r] = dot4[1];
                    out[i + 2][r0 + r] = dot4[2];
                    out[i + 3][r0 + r] = dot4[3];
                }
                for (; i < in.length; i++) {
                    out[i][r0 + r] = math.dot(rows, r * cols, in[i], 0, cols);
                }
            }
        }
    }

    /**
     * Causal attention, split across threads by (run of query tokens, head) for prompts and by
     * (decode token, part of its positions) for single tokens. A run is up to {@link #QUERY_TILE}
     * consecutive tokens of one chunk (a prefill); a decode token is a run of one. Scores exist for
     * one decode part's heads or one tile's segment of positions at a time, never T×T.   out: (T, Q)
     */
    private float[][] attention(float[][] q, Chunk[] chunkOf, int[] posOf, int l) {
        int tokens = q.length, heads = c.heads();
        float[][] out = new float[tokens][c.qDim()];
        long work = 0;
        for (int i = 0; i < tokens; i++) {
            work += (long) (posOf[i] + 1) * c.qDim();
        }
        // Runs: the first token and length of each.
        int[] runStart = new int[tokens], runLength = new int[tokens];
        int runs = 0;
        for (int i = 0; i < tokens; runs++) {
            int n = 1;
            while (n < QUERY_TILE && i + n < tokens && chunkOf[i + n] == chunkOf[i] && posOf[i + n] == posOf[i] + n) {
                n++;
            }
            runStart[runs] = i;
            runLength[runs] = n;
            i += n;
        }
        // Work items. A prompt's run of tokens: one item per head (attendTile). A decode token: one
        // item per part of its positions, every head of the token in each, so a thread streams one
        // run of memory (the KV blocks are whole positions' keys or values for all heads); a token
        // with a long context is cut into parts when there are fewer tokens than threads, and its
        // parts' softmax sums combined after. Heads shared out a few at a time instead read every
        // block in strided pieces: 4 sequences at position 4000 on the 110M shape took 119 against 95 ms a step.
        int decodeTokens = 0;
        for (int r = 0; r < runs; r++) {
            decodeTokens += runLength[r] == 1 ? 1 : 0;
        }
        int[] partsOf = new int[runs];
        int items = 0;
        for (int r = 0; r < runs; r++) {
            if (runLength[r] > 1) {
                partsOf[r] = heads;
            } else {
                int wanted = (2 * team.size() + decodeTokens - 1) / decodeTokens;
                int visible = posOf[runStart[r]] - firstVisible(posOf[runStart[r]]) + 1;
                partsOf[r] = Math.max(1, Math.min(wanted, visible / MIN_PART_POSITIONS));
            }
            items += partsOf[r];
        }
        int[] itemRun = new int[items], itemSub = new int[items];
        for (int r = 0, k = 0; r < runs; r++) {
            for (int sub = 0; sub < partsOf[r]; sub++, k++) {
                itemRun[k] = r;
                itemSub[k] = sub;
            }
        }
        // A decode part's output before normalising, with its heads' largest scores and sums.   (items, Q), (items, heads)
        float[][] partOut = new float[items][], partLargest = new float[items][], partSum = new float[items][];
        WorkerTeam.Range attendItems = (from, to) -> {
            for (int k = from; k < to; k++) {
                int run = itemRun[k], i = runStart[run];
                if (runLength[run] > 1) {
                    attendTile(i, runLength[run], itemSub[k], q, chunkOf, posOf, l, out);
                    continue;
                }
                int pos = posOf[i], first = firstVisible(pos), parts = partsOf[run];
                // Part boundaries on block boundaries, so no block is read by two parts.
                int firstBlock = first / blockSize, blocks = pos / blockSize - firstBlock + 1;
                int lo = Math.max(first, (firstBlock + blocks * itemSub[k] / parts) * blockSize);
                int hi = Math.min(pos, (firstBlock + blocks * (itemSub[k] + 1) / parts) * blockSize - 1);
                float[] o = parts == 1 ? out[i] : new float[c.qDim()];
                partOut[k] = o;
                partLargest[k] = new float[heads];
                partSum[k] = new float[heads];
                if (lo <= hi) {
                    attendPositions(lo, hi, q[i], chunkOf[i].blockTable(), l, o, partLargest[k], partSum[k]);
                } else {
                    Arrays.fill(partLargest[k], Float.NEGATIVE_INFINITY);   // an empty part (fewer blocks than parts)
                }
            }
        };
        if (work < PARALLEL_ATTENTION_WORK) {
            attendItems.run(0, items);
        } else {
            team.run(items, 1, attendItems);
        }

        // Each decode token's output: its parts' weighted values over their softmax sums, both
        // brought to the token's largest score.
        float invSqrt = (float) (1.0 / Math.sqrt(c.headDim()));
        for (int k = 0; k < items; ) {
            int run = itemRun[k], parts = partsOf[run];
            if (runLength[run] > 1) {
                k += parts;
                continue;
            }
            float[] oi = out[runStart[run]];
            for (int h = 0; h < heads; h++) {
                float largest = Float.NEGATIVE_INFINITY;
                for (int p = k; p < k + parts; p++) {
                    largest = Math.max(largest, partLargest[p][h]);
                }
                float sum = 0f;
                for (int p = k; p < k + parts; p++) {
                    float weight = parts == 1 ? 1f : (float) Math.exp((partLargest[p][h] - largest) * invSqrt);
                    sum += weight * partSum[p][h];
                    if (parts > 1) {
                        for (int d = h * c.headDim(); d < (h + 1) * c.headDim(); d++) {
                            oi[d] += weight * partOut[p][d];
                        }
                    }
                }
                float inv = 1f / sum;
                for (int d = h * c.headDim(); d < (h + 1) * c.headDim(); d++) {
                    oi[d] *= inv;
                }
            }
            k += parts;
        }
        return out;
    }

    /** The first position a query at position pos sees: 0, or the sliding window's start. */
    private int firstVisible(int pos) {
        return c.slidingWindow() > 0 ? Math.max(0, pos - c.slidingWindow() + 1) : 0;
    }

    /**
     * Every head of a token (query qi; its sequence's KV blocks in table) over positions [from, to]:
     * out gets the values weighted by the softmax numerators relative to each head's largest score
     * there, not yet divided by their sum; largest and sum (per head) get those. Two passes, scores
     * then values, each going through the KV blocks once, every head in turn within a block, so a
     * block's keys (and values) are read as one run of memory.
     *
     * <p>Scores are computed for whole blocks, the positions outside [from, to] then set to −∞ (their
     * numerators vanish: at most e^−87.3 each beside the 1 of the largest): the SIMD kernels then
     * never take their one-position tails. Stories260k, 8 sequences on one thread: a step at position
     * 16 (a block and one position) cost 2.2 µs a token more than at position 15 with the tails.
     * Values are weighted for [from, to] only, as a block's positions past the token's may hold
     * anything.
     */
    private void attendPositions(int from, int to, float[] qi, int[] table, int l, float[] out, float[] largest, float[] sum) {
        int kvDim = c.kvDim(), heads = c.heads();
        float invSqrt = (float) (1.0 / Math.sqrt(c.headDim()));
        int first = from - from % blockSize, n = to - to % blockSize + blockSize - first;   // whole blocks: positions [first, first + n)
        float[] scores = scratch.get().scores(heads * n);  // (heads, positions)

        // Scores q·k of every position of the blocks, block by block; those outside [from, to] −∞.
        for (int j = first; j < first + n; j += blockSize) {
            scoreKeys(l, qi, table[j / blockSize] * blockSize * kvDim, scores, j - first, n, blockSize);
        }
        for (int h = 0; h < heads; h++) {
            Arrays.fill(scores, h * n, h * n + from - first, Float.NEGATIVE_INFINITY);
            Arrays.fill(scores, h * n + to + 1 - first, (h + 1) * n, Float.NEGATIVE_INFINITY);
        }

        // Softmax numerators relative to each head's largest score.
        for (int h = 0; h < heads; h++) {
            largest[h] = math.largest(scores, h * n, n);
            sum[h] = math.expSum(scores, h * n, n, largest[h], invSqrt);
        }

        // Values weighted by the numerators, block by block, positions [from, to].
        for (int j = from; j <= to; ) {
            int offset = j % blockSize, len = Math.min(to + 1 - j, blockSize - offset);
            int blockValues = (table[j / blockSize] * blockSize + offset) * kvDim;
            addValues(l, scores, j - first, n, len, blockValues, out);
            j += len;
        }
    }

    /**
     * Attention of head h for the n consecutive tokens of one chunk from token {@code first}, over
     * the visible positions in segments of {@link #SEGMENT_POSITIONS}: each segment's scores for every
     * query of the tile (each KV block scored against all of them while it is in cache), then one
     * running-softmax update per query (its largest score and sum so far; output rescaled when the
     * largest grows), then the segment's values weighted into every query's output. A long prompt
     * reads its keys and values once per tile rather than once per token.
     *
     * <p>Four queries that see the same positions of a block share each load of its keys and values
     * ({@link VectorMath#dotColumns4}, {@link VectorMath#addWeightedRows4}); one query at a time,
     * the kernels ran at about 20 GFLOP/s a core on head size 64, four at a time at 35–55. With tiles
     * of 64, the 110M benchmark shape prefills an 8192-token prompt at 267 tok/s against 148. On
     * AVX-512 machines queries go eight at a time ({@link VectorMath#dotColumns8},
     * {@link VectorMath#addWeightedRows8}; sixteen accumulators need its 32 registers): 296–304
     * against 250–263 tok/s for the 8K prompt. A BF16 cache's block is widened into scratch once per
     * tile, so both cache types run the same FP32 kernels.
     */
    private void attendTile(int first, int n, int h, float[][] q, Chunk[] chunkOf, int[] posOf, int l, float[][] out) {
        int hd = c.headDim(), kvDim = c.kvDim();
        int kvOff = (h / (c.heads() / c.kvHeads())) * hd, qOff = h * hd;
        float invSqrt = (float) (1.0 / Math.sqrt(hd));
        int segment = Math.max(blockSize, SEGMENT_POSITIONS / blockSize * blockSize);
        Scratch sc = scratch.get();
        float[] scores = sc.scores(n * segment);          // (tile, segment)
        float[] largest = sc.tileLargest, sum = sc.tileSum;  // (tile)
        Arrays.fill(largest, 0, n, Float.NEGATIVE_INFINITY);
        Arrays.fill(sum, 0, n, 0f);
        int[] table = chunkOf[first].blockTable();
        int lastPos = posOf[first + n - 1];
        // Eight queries share each load of the keys and values where the registers allow.
        boolean eight = math.sharesLoadsAcrossEightQueries();
        int start = firstVisible(posOf[first]);
        // Segments start on block boundaries, so a block never spans two of them.
        for (int s0 = start - start % blockSize; s0 <= lastPos; s0 += segment) {
            int s1 = Math.min(s0 + segment, lastPos + 1);   // positions [s0, s1); row t of scores holds position p at t·segment + p − s0

            // Scores q·k of every query at the positions of this segment it sees, block by block.
            for (int j = Math.max(s0, start); j < s1; ) {
                int offset = j % blockSize, len = Math.min(s1 - j, blockSize - offset), block = table[j / blockSize];
                // This head's keys of the block, one row of blockSize positions per dimension, from
                // kAt (at position j); a BF16 block is widened once for all the tile's queries.
                float[] keys = keyCache16 == null ? keyCache[l] : sc.blockKeys(hd * blockSize);
                int kAt = (block * kvDim + kvOff) * blockSize + offset;
                if (keyCache16 != null) {
                    math.bf16ToFloats(keyCache16[l], kAt - offset, keys, 0, hd * blockSize);
                    kAt = offset;
                }
                for (int t = 0; t < n; ) {
                    int lo = firstSeen(posOf[first + t], j), hi = lastSeen(posOf[first + t], j, len);
                    // Groups of eight, or four, queries that see the same positions (all but the blocks
                    // at the causal edge and the window start) share each load of the keys.
                    if (eight && t + 8 <= n && lo == firstSeen(posOf[first + t + 7], j) && hi == lastSeen(posOf[first + t + 7], j, len)) {
                        if (lo <= hi) {
                            math.dotColumns8(q, first + t, qOff, keys, kAt + (lo - j), blockSize, hd, scores, t * segment + lo - s0, segment, hi - lo + 1);
                        }
                        t += 8;
                    } else if (t + 4 <= n && lo == firstSeen(posOf[first + t + 3], j) && hi == lastSeen(posOf[first + t + 3], j, len)) {
                        if (lo <= hi) {
                            math.dotColumns4(q[first + t], q[first + t + 1], q[first + t + 2], q[first + t + 3], qOff, keys, kAt + (lo - j), blockSize, hd,
                                    scores, t * segment + lo - s0, segment, hi - lo + 1);
                        }
                        t += 4;
                    } else {
                        if (lo <= hi) {
                            math.dotColumns(q[first + t], qOff, keys, kAt + (lo - j), blockSize, hd, scores, t * segment + lo - s0, hi - lo + 1);
                        }
                        t++;
                    }
                }
                j += len;
            }

            // Running softmax: numerators relative to each query's largest score so far.
            for (int t = 0; t < n; t++) {
                int pos = posOf[first + t];
                int lo = Math.max(s0, firstVisible(pos)), hi = Math.min(s1 - 1, pos);
                if (lo > hi) {
                    continue;
                }
                int row = t * segment + lo - s0, count = hi - lo + 1;
                float newLargest = Math.max(largest[t], math.largest(scores, row, count));
                float segmentSum = math.expSum(scores, row, count, newLargest, invSqrt);
                if (newLargest > largest[t] && largest[t] != Float.NEGATIVE_INFINITY) {
                    float rescale = (float) Math.exp((largest[t] - newLargest) * invSqrt);
                    float[] oi = out[first + t];
                    for (int d = qOff; d < qOff + hd; d++) {
                        oi[d] *= rescale;
                    }
                    sum[t] *= rescale;
                }
                sum[t] += segmentSum;
                largest[t] = newLargest;
            }

            // Values weighted by the numerators, block by block: this head's value rows of the block
            // from vAt (position j), vStride apart; a BF16 block's rows widened once, as the keys.
            for (int j = Math.max(s0, start); j < s1; ) {
                int offset = j % blockSize, len = Math.min(s1 - j, blockSize - offset), block = table[j / blockSize];
                float[] values = valueCache16 == null ? valueCache[l] : sc.blockValues(hd * blockSize);
                int vAt = (block * blockSize + offset) * kvDim + kvOff, vStride = kvDim;
                if (valueCache16 != null) {
                    for (int o = 0; o < len; o++) {
                        math.bf16ToFloats(valueCache16[l], vAt + o * kvDim, values, o * hd, hd);
                    }
                    vAt = 0;
                    vStride = hd;
                }
                for (int t = 0; t < n; ) {
                    int lo = firstSeen(posOf[first + t], j), hi = lastSeen(posOf[first + t], j, len);
                    int pAt = t * segment + lo - s0, vFrom = vAt + (lo - j) * vStride;
                    if (eight && t + 8 <= n && lo == firstSeen(posOf[first + t + 7], j) && hi == lastSeen(posOf[first + t + 7], j, len)) {
                        if (lo <= hi) {
                            math.addWeightedRows8(scores, pAt, segment, hi - lo + 1, values, vFrom, vStride, hd, out, first + t, qOff);
                        }
                        t += 8;
                    } else if (t + 4 <= n && lo == firstSeen(posOf[first + t + 3], j) && hi == lastSeen(posOf[first + t + 3], j, len)) {
                        if (lo <= hi) {
                            math.addWeightedRows4(scores, pAt, segment, hi - lo + 1, values, vFrom, vStride, hd,
                                    out[first + t], out[first + t + 1], out[first + t + 2], out[first + t + 3], qOff);
                        }
                        t += 4;
                    } else {
                        if (lo <= hi) {
                            math.addWeightedRows(scores, pAt, hi - lo + 1, values, vFrom, vStride, hd, out[first + t], qOff);
                        }
                        t++;
                    }
                }
                j += len;
            }
        }
        for (int t = 0; t < n; t++) {
            float inv = 1f / sum[t];
            float[] oi = out[first + t];
            for (int d = 0; d < hd; d++) {
                oi[qOff + d] *= inv;
            }
        }
    }

    /** Token key k and value v of layer l into the cache: the key at keyAt, one dimension per blockSize (transposed); the value row at valueAt. */
    private void store(int l, int keyAt, int valueAt, float[] k, float[] v) {
        int kvDim = c.kvDim();
        if (keyCache16 != null) {
            short[] keys = keyCache16[l], values = valueCache16[l];
            for (int d = 0; d < kvDim; d++) {
                keys[keyAt + d * blockSize] = DType.floatToBf16(k[d]);
                values[valueAt + d] = DType.floatToBf16(v[d]);
            }
            return;
        }
        float[] keys = keyCache[l];
        for (int d = 0; d < kvDim; d++) {
            keys[keyAt + d * blockSize] = k[d];
        }
        System.arraycopy(v, 0, valueCache[l], valueAt, kvDim);
    }

    // Decode's attention kernels on layer l's cache, whichever type it holds, for every head of a
    // token over len positions of one block: keys at kOff are KV head 0's (headDim, blockSize) rows
    // of the block, the next KV head's headDim · blockSize further; values at vOff are its
    // positions' rows (stride K). Scores and weights are (heads, n) from pOff. Every head in one
    // call lets small heads share the FMA chains of four (stories260k, heads of 8: 8 sequences at
    // position 128 took 0.85 of the time per step on one thread, in-process A/B). For decode the
    // BF16 kernels widen each value as they load it: widening a head's block into scratch and
    // reusing the FP32 kernels made 16-sequence decode at position 4000 1.7–2× slower (alternating
    // runs on the 110M shape), since each block serves one query. A prefill tile widens each block
    // once for its 64 queries instead (attendTile).

    private void scoreKeys(int l, float[] q, int kOff, float[] out, int pOff, int n, int len) {
        int hd = c.headDim(), group = c.heads() / c.kvHeads();
        if (keyCache16 == null) {
            math.dotColumnsHeads(q, 0, keyCache[l], kOff, blockSize, hd * blockSize, hd, c.heads(), group, out, pOff, n, len);
            return;
        }
        for (int h = 0; h < c.heads(); h++) {
            math.dotColumns(q, h * hd, keyCache16[l], kOff + (h / group) * hd * blockSize, blockSize, hd, out, pOff + h * n, len);
        }
    }

    private void addValues(int l, float[] p, int pOff, int n, int len, int vOff, float[] out) {
        int hd = c.headDim(), group = c.heads() / c.kvHeads();
        if (valueCache16 == null) {
            math.addWeightedRowsHeads(p, pOff, n, len, valueCache[l], vOff, c.kvDim(), hd, c.heads(), group, out, 0);
            return;
        }
        for (int h = 0; h < c.heads(); h++) {
            math.addWeightedRows(p, pOff + h * n, len, valueCache16[l], vOff + (h / group) * hd, c.kvDim(), hd, out, h * hd);
        }
    }

    /** The first position of a block from j that a query at position pos sees (past the block's end: it sees none). */
    private int firstSeen(int pos, int j) {
        return Math.max(j, firstVisible(pos));
    }

    /** The last position of the len positions from j that a query at position pos sees (before j: it sees none). */
    private static int lastSeen(int pos, int j, int len) {
        return Math.min(j + len - 1, pos);
    }

    @Override
    public void close() {
        team.close();
    }
}
