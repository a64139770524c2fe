package io.longdoc.engine.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import jcuda.Pointer;
import jcuda.cudaDataType;
import jcuda.driver.CUdeviceptr;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasComputeType;
import jcuda.jcublas.cublasGemmAlgo;
import jcuda.jcublas.cublasOperation;

/**
 * The launchers: one method per kernel of engine/src/main/cuda (same argument order, checked
 * sizes, grid computed here) and the cuBLAS GEMM. All work goes to the device's stream. Shapes in
 * the comments are row-major (rows, columns).
 */
public final class CudaOps {
    /** Query rows per attention tile and the largest head dimension (BQ and HD_MAX in attention.cu). */
    public static final int ATTENTION_TILE_ROWS = 16, MAX_HEAD_DIM = 128, ATTENTION_KEY_TILE = 64;

    private final CudaDevice gpu;
    private final Pointer one = Pointer.to(new float[] {1f});
    private final Pointer zero = Pointer.to(new float[] {0f});

    public CudaOps(CudaDevice gpu) {
        this.gpu = gpu;
    }

    private void launch(String kernel, int gx, int gy, int gz, int block, Pointer... args) {
        cuLaunchKernel(gpu.function(kernel), gx, gy, gz, block, 1, 1, 0, gpu.stream, Pointer.to(args), null);
    }

    private static Pointer p(CUdeviceptr d) {
        return Pointer.to(d);
    }

    private static Pointer i(int v) {
        return Pointer.to(new int[] {v});
    }

    private static Pointer f(float v) {
        return Pointer.to(new float[] {v});
    }

    /** x (tokens, dim) FP32 = table (vocab, dim) BF16 rows of ids (tokens). */
    public void embeddingGather(CUdeviceptr table, CUdeviceptr ids, CUdeviceptr x, int tokens, int dim) {
        if (tokens > 0) {
            launch("embedding_gather_kernel", tokens, 1, 1, 256, p(table), p(ids), p(x), i(dim));
        }
    }

    /** out (count, dim) FP32 = x rows (count) of x (tokens, dim) FP32. */
    public void gatherRows(CUdeviceptr x, CUdeviceptr rows, CUdeviceptr out, int count, int dim) {
        if (count > 0) {
            launch("gather_rows_kernel", count, 1, 1, 256, p(x), p(rows), p(out), i(dim));
        }
    }

    /** out (rows, dim) BF16 = RMSNorm(x (rows, dim) FP32) * weight (dim) FP32. */
    public void rmsNorm(CUdeviceptr x, CUdeviceptr weight, CUdeviceptr out, int rows, int dim, float eps) {
        if (rows > 0) {
            launch("rmsnorm_kernel", rows, 1, 1, 256, p(x), p(weight), p(out), i(dim), f(eps));
        }
    }

    /** Rotates q and k of qkv (tokens, Q + 2K) FP32 in place with cos/sin (tokens, headDim/2), then stores k, v as BF16 at slot (tokens). */
    public void ropeAndCache(CUdeviceptr qkv, CUdeviceptr cos, CUdeviceptr sin, CUdeviceptr slot, CUdeviceptr kCache, CUdeviceptr vCache,
                             int tokens, int heads, int kvHeads, int headDim) {
        if (tokens > 0) {
            launch("rope_cache_kernel", tokens, 1, 1, 128, p(qkv), p(cos), p(sin), p(slot), p(kCache), p(vCache),
                    i(heads), i(kvHeads), i(headDim));
        }
    }

    /** out (tokens, F) BF16 = silu(gate) * up, gateUp (tokens, 2F) FP32 = [gate | up]. */
    public void swiglu(CUdeviceptr gateUp, CUdeviceptr out, int tokens, int hidden) {
        long n = (long) tokens * hidden;
        if (n > 0) {
            launch("swiglu_kernel", (int) ((n + 255) / 256), 1, 1, 256, p(gateUp), p(out), i(tokens), i(hidden));
        }
    }

    /** Where the attention kernel finds the step's tiles, tokens and block tables (all int32 device arrays). */
    public record AttentionInputs(CUdeviceptr blockTables, CUdeviceptr seqTableStart, CUdeviceptr tokPos, int blockSize) {
    }

    /**
     * Attention for {@code tiles} tiles (tileSeq, tileFirst, tileCount) over every query head.
     * splits == 1: writes out (tokens, heads * headDim) BF16. splits > 1 (every tile one decode
     * token): writes partials (partO (splits, tiles, heads, headDim), partM and partL (splits,
     * tiles, heads)) for {@link #attentionMerge} to combine.
     */
    public void attention(CUdeviceptr qkv, int qkvStride, CUdeviceptr kCache, CUdeviceptr vCache, int kvDim, AttentionInputs in,
                          CUdeviceptr tileSeq, CUdeviceptr tileFirst, CUdeviceptr tileCount, int tiles,
                          int heads, int kvHeads, int headDim, int window, int splits, int splitLen,
                          CUdeviceptr out, int outStride, CUdeviceptr partO, CUdeviceptr partM, CUdeviceptr partL) {
        if (headDim > MAX_HEAD_DIM || headDim % 2 != 0) {
            throw new IllegalArgumentException("attention kernel: head dimension " + headDim + " (at most " + MAX_HEAD_DIM + ", even)");
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention kernel: " + heads + " heads is not a multiple of " + kvHeads + " KV heads");
        }
        if (tiles == 0) {
            return;
        }
        launch("attention_tile_kernel", tiles, heads, splits, 128,
                p(qkv), i(qkvStride), p(kCache), p(vCache), i(kvDim), p(in.blockTables()), p(in.seqTableStart()), i(in.blockSize()),
                p(tileSeq), p(tileFirst), p(tileCount), p(in.tokPos()),
                i(heads), i(kvHeads), i(headDim), i(window), i(splitLen), p(out), i(outStride), p(partO), p(partM), p(partL));
    }

    /** Merges the split partials of the {@code count} decode tiles (their tokens: mergeTokens) into out (tokens, heads * headDim) BF16. */
    public void attentionMerge(CUdeviceptr partO, CUdeviceptr partM, CUdeviceptr partL, CUdeviceptr mergeTokens, int count,
                               int splits, int heads, int headDim, CUdeviceptr out, int outStride) {
        if (count > 0) {
            launch("attention_merge_kernel", count, heads, 1, Math.max(32, (headDim + 31) / 32 * 32),
                    p(partO), p(partM), p(partL), p(mergeTokens), i(splits), i(count), i(heads), i(headDim), p(out), i(outStride));
        }
    }

    /** Per-row sampling inputs on the device (see sampling.cu): FP32 temperature/topP/penalty, int32 topK, int64 seed/draw, uint32 seen bits. */
    public record SampleInputs(CUdeviceptr seenWords, int words, CUdeviceptr temperature, CUdeviceptr topK, CUdeviceptr topP,
                               CUdeviceptr penalty, CUdeviceptr seed, CUdeviceptr draw) {
    }

    /** Chooses one id per row of logits (rows, vocab) FP32 (modified in place) into out (rows) int32. */
    public void sample(CUdeviceptr logits, int rows, int vocab, SampleInputs in, CUdeviceptr out) {
        if (rows > 0) {
            launch("sample_kernel", rows, 1, 1, 1024, p(logits), i(vocab), p(in.seenWords()), i(in.words()), p(in.temperature()),
                    p(in.topK()), p(in.topP()), p(in.penalty()), p(in.seed()), p(in.draw()), p(out));
        }
    }

    /**
     * y (rows, n) FP32 = x (rows, k) BF16 · wᵀ, w (n, k) BF16 row-major, FP32 accumulation;
     * accumulate adds into y (y += ...), which fuses the residual connections into their GEMMs.
     * In cuBLAS's column-major terms: y^T (n × rows) = op_T(w) (n × k) · x^T (k × rows).
     */
    public void gemm(CUdeviceptr w, CUdeviceptr x, CUdeviceptr y, int rows, int n, int k, boolean accumulate) {
        if (rows == 0) {
            return;
        }
        JCublas2.cublasGemmEx_new(gpu.cublas, cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, n, rows, k,
                one, w, cudaDataType.CUDA_R_16BF, k, x, cudaDataType.CUDA_R_16BF, k,
                accumulate ? one : zero, y, cudaDataType.CUDA_R_32F, n,
                cublasComputeType.CUBLAS_COMPUTE_32F, cublasGemmAlgo.CUBLAS_GEMM_DEFAULT);
    }
}
