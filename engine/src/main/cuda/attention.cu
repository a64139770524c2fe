// Causal attention over the paged KV cache, flash-attention style: scores are computed one key
// tile at a time with an online softmax (running max m, running sum l, rescaled output o), so no
// T×T score matrix ever exists and a 32K prompt needs only O(T) memory.
//
// attention_tile_kernel: for the query tokens of one tile (up to BQ consecutive tokens of one
// sequence) and one query head h, over keys [split * splitLen, min((split+1) * splitLen, last + 1)):
//     o = softmax(q · Kᵀ / sqrt(headDim) + causal/window mask) · V
//   q: rows of qkv (tokens, qkvStride) FP32 already rotated; head h at column h * headDim.
//   kCache, vCache: (slots, kvDim) BF16; key position p of sequence s lives at slot
//     blockTables[seqTableStart[s] + p / blockSize] * blockSize + p % blockSize.
//   GQA: query head h reads kv head h / (heads / kvHeads).
//   Masking: key p is visible to a query at position r when p <= r and (window == 0 or p > r - window).
//   Tiles: tileSeq, tileFirst (index of the tile's first token in the step), tileCount (<= BQ);
//   tokPos: (tokens) position of each step token in its sequence.
//   With one split the result is normalised and written as BF16 to out (tokens, outStride) at
//   column h * headDim. With several (split-K, for decode over long caches when few sequences are
//   in flight; then every tile is one decode token) each split writes its unnormalised o, m and l
//   to partO (splits, tiles, heads, headDim), partM and partL (splits, tiles, heads), and
//   attention_merge_kernel combines them.
//   Launch: grid = (tiles, heads, splits), block = 128 threads = BQ rows × 8 threads per row;
//   static shared memory 44 KiB (headDim <= 128).
//
// attention_merge_kernel: for tile i (its token mergeTokens[i]) and head h, the log-sum-exp merge
//     m* = max_s m_s,  w_s = exp(m_s - m*),  o = Σ w_s o_s / Σ w_s l_s
//   Launch: grid = (count, heads), block = headDim.
#include "common.cuh"
#include <math_constants.h>

#define BQ 16        // query rows per tile
#define BK 64        // keys per shared-memory tile
#define HD_MAX 128   // largest head dimension supported
#define ROW_THREADS 8

extern "C" __global__ void attention_tile_kernel(
        const float* __restrict__ qkv, int qkvStride,
        const bf16* __restrict__ kCache, const bf16* __restrict__ vCache, int kvDim,
        const int* __restrict__ blockTables, const int* __restrict__ seqTableStart, int blockSize,
        const int* __restrict__ tileSeq, const int* __restrict__ tileFirst, const int* __restrict__ tileCount,
        const int* __restrict__ tokPos,
        int heads, int kvHeads, int headDim, int window, int splitLen,
        bf16* __restrict__ out, int outStride,
        float* __restrict__ partO, float* __restrict__ partM, float* __restrict__ partL) {
    __shared__ float sQ[BQ][HD_MAX];
    __shared__ bf16 sK[BK][HD_MAX];
    __shared__ bf16 sV[BK][HD_MAX];
    __shared__ float sP[BQ][BK];

    int tile = blockIdx.x, h = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
    int kvHead = h / (heads / kvHeads);
    int seq = tileSeq[tile], first = tileFirst[tile], n = tileCount[tile];
    const int* table = blockTables + seqTableStart[seq];
    float scale = rsqrtf((float) headDim);

    // Queries of the tile, pre-scaled by 1/sqrt(headDim); rows past n are zero and never written.
    for (int i = threadIdx.x; i < BQ * HD_MAX; i += blockDim.x) {
        int r = i / HD_MAX, d = i % HD_MAX;
        sQ[r][d] = (r < n && d < headDim) ? qkv[(size_t) (first + r) * qkvStride + h * headDim + d] * scale : 0.0f;
    }
    int row = threadIdx.x / ROW_THREADS, lane = threadIdx.x % ROW_THREADS;
    int rowPos = row < n ? tokPos[first + row] : -1;
    int lastPos = tokPos[first + n - 1];
    int firstPos = tokPos[first];
    int kvBegin = split * splitLen;
    int kvEnd = min(kvBegin + splitLen, lastPos + 1);
    if (window > 0) {
        kvBegin = max(kvBegin, firstPos - window + 1);   // tiles wholly before every query's window are skipped
    }

    float m = -CUDART_INF_F, l = 0.0f;
    float o[HD_MAX / ROW_THREADS];
    for (int j = 0; j < HD_MAX / ROW_THREADS; j++) o[j] = 0.0f;

    for (int k0 = kvBegin; k0 < kvEnd; k0 += BK) {
        __syncthreads();   // the previous tile's sK/sV/sP are no longer read
        // Keys and values of this tile from their paged slots.
        for (int i = threadIdx.x; i < BK * headDim; i += blockDim.x) {
            int key = i / headDim, d = i % headDim;
            int p = k0 + key;
            bf16 kv = __float2bfloat16(0.0f), vv = kv;
            if (p < kvEnd) {
                size_t slot = (size_t) table[p / blockSize] * blockSize + p % blockSize;
                kv = kCache[slot * kvDim + (size_t) kvHead * headDim + d];
                vv = vCache[slot * kvDim + (size_t) kvHead * headDim + d];
            }
            sK[key][d] = kv;
            sV[key][d] = vv;
        }
        __syncthreads();

        // Scores: each of a row's 8 threads takes 8 keys.
        float s[BK / ROW_THREADS];
        float tileMax = -CUDART_INF_F;
        for (int j = 0; j < BK / ROW_THREADS; j++) {
            int key = lane * (BK / ROW_THREADS) + j;
            int p = k0 + key;
            bool visible = row < n && p < kvEnd && p <= rowPos && (window == 0 || p > rowPos - window);
            float dot = -CUDART_INF_F;
            if (visible) {
                dot = 0.0f;
                for (int d = 0; d < headDim; d++) dot += sQ[row][d] * __bfloat162float(sK[key][d]);
            }
            s[j] = dot;
            tileMax = fmaxf(tileMax, dot);
        }
        // Row max and sum over the row's 8 lanes (consecutive lanes of one warp).
        for (int off = 1; off < ROW_THREADS; off <<= 1) tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, off));
        float mNew = fmaxf(m, tileMax);
        float alpha = (m == -CUDART_INF_F) ? 0.0f : __expf(m - mNew);
        float rowSum = 0.0f;
        for (int j = 0; j < BK / ROW_THREADS; j++) {
            float p = (s[j] == -CUDART_INF_F) ? 0.0f : __expf(s[j] - mNew);
            sP[row][lane * (BK / ROW_THREADS) + j] = p;
            rowSum += p;
        }
        for (int off = 1; off < ROW_THREADS; off <<= 1) rowSum += __shfl_xor_sync(0xffffffffu, rowSum, off);
        if (mNew != -CUDART_INF_F) {
            l = l * alpha + rowSum;
            m = mNew;
        }
        __syncwarp();   // sP of this row was written by lanes of the same warp

        // o = o * alpha + P · V for this thread's dimensions d = lane + 8j.
        for (int j = 0; j < HD_MAX / ROW_THREADS; j++) {
            int d = lane + j * ROW_THREADS;
            if (d < headDim) {
                float acc = (mNew == -CUDART_INF_F) ? o[j] : o[j] * alpha;
                for (int key = 0; key < BK; key++) acc += sP[row][key] * __bfloat162float(sV[key][d]);
                o[j] = acc;
            }
        }
    }

    if (row >= n) return;
    int t = first + row;
    if (splits == 1) {
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int j = 0; j < HD_MAX / ROW_THREADS; j++) {
            int d = lane + j * ROW_THREADS;
            if (d < headDim) out[(size_t) t * outStride + h * headDim + d] = __float2bfloat16(o[j] * inv);
        }
    } else {
        size_t at = ((size_t) split * gridDim.x + tile) * heads + h;
        for (int j = 0; j < HD_MAX / ROW_THREADS; j++) {
            int d = lane + j * ROW_THREADS;
            if (d < headDim) partO[at * headDim + d] = o[j];
        }
        if (lane == 0) {
            partM[at] = m;
            partL[at] = l;
        }
    }
}

extern "C" __global__ void attention_merge_kernel(const float* __restrict__ partO, const float* __restrict__ partM,
                                                  const float* __restrict__ partL, const int* __restrict__ mergeTokens,
                                                  int splits, int tiles, int heads, int headDim,
                                                  bf16* __restrict__ out, int outStride) {
    int tile = blockIdx.x, t = mergeTokens[tile], h = blockIdx.y, d = threadIdx.x;
    if (d >= headDim) return;
    float mMax = -CUDART_INF_F;
    for (int s = 0; s < splits; s++) mMax = fmaxf(mMax, partM[((size_t) s * tiles + tile) * heads + h]);
    float num = 0.0f, den = 0.0f;
    for (int s = 0; s < splits; s++) {
        size_t at = ((size_t) s * tiles + tile) * heads + h;
        float m = partM[at];
        if (m == -CUDART_INF_F) continue;   // a split past the sequence's end contributes nothing
        float w = __expf(m - mMax);
        num += w * partO[at * headDim + d];
        den += w * partL[at];
    }
    out[(size_t) t * outStride + h * headDim + d] = __float2bfloat16(den > 0.0f ? num / den : 0.0f);
}
