// Sampling on the GPU, one block per row, with the CPU sampler's semantics
// (io.longdoc.engine.runtime.Sampler), so only the chosen ids cross to the host:
//   1. repetition penalty on every id set in the row's seen bit set: s < 0 ? s * p : s / p
//   2. temperature 0: argmax (the lowest id among equal maxima)
//   3. otherwise s / T; top-k keeps the ids whose score is >= the k-th largest (exact radix select);
//      softmax over what is kept; top-p keeps the ids whose probability is >= the largest threshold
//      whose mass reaches p; then a draw u in [0, 1) from the row's stream, SplittableRandom's
//      draw n (seed + (n+1)·γ through mix64), picks the first id in id order whose running
//      weight exceeds u · total.
//   logits: (rows, vocab) FP32, modified in place; seenWords: (rows, words) uint32 bit sets
//   (ignored where penalty == 1); temperature, topP, penalty: (rows) FP32; topK: (rows) int32
//   (0 = off); seed, draw: (rows) int64; out: (rows) int32 chosen ids.
//   Launch: grid = rows, block = 1024 (SAMPLE_THREADS).
#include "common.cuh"
#include <math_constants.h>
#include <stdint.h>

#define SAMPLE_THREADS 1024

// Floats as unsigned keys in the same order (negatives reversed below positives).
__device__ __forceinline__ uint32_t order_key(float f) {
    uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float key_value(uint32_t key) {
    return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

__device__ __forceinline__ double stream_uniform(long long seed, long long n) {
    unsigned long long z = (unsigned long long) seed + (unsigned long long) (n + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z = z ^ (z >> 31);
    return (double) (z >> 11) * 0x1.0p-53;
}

__device__ float block_reduce_sum(float v, float* shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < SAMPLE_THREADS / 32; w++) total += shared[w];
    return total;
}

__device__ float block_reduce_max(float v, float* shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float m = -CUDART_INF_F;
    for (int w = 0; w < SAMPLE_THREADS / 32; w++) m = fmaxf(m, shared[w]);
    return m;
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_kernel(float* __restrict__ logits, int vocab, const unsigned int* __restrict__ seenWords, int words,
                                         const float* __restrict__ temperature, const int* __restrict__ topK,
                                         const float* __restrict__ topP, const float* __restrict__ penalty,
                                         const long long* __restrict__ seed, const long long* __restrict__ draw,
                                         int* __restrict__ out) {
    __shared__ float red[SAMPLE_THREADS / 32];
    __shared__ unsigned int hist[256];
    __shared__ float chunkSum[SAMPLE_THREADS];
    __shared__ unsigned int sharedKey;
    __shared__ int sharedIndex;
    __shared__ float sharedValue;
    int row = blockIdx.x, tid = threadIdx.x;
    float* s = logits + (size_t) row * vocab;

    // 1. Repetition penalty.
    float p = penalty[row];
    if (p != 1.0f) {
        const unsigned int* bits = seenWords + (size_t) row * words;
        for (int i = tid; i < vocab; i += SAMPLE_THREADS) {
            if (bits[i >> 5] & (1u << (i & 31))) s[i] = s[i] < 0.0f ? s[i] * p : s[i] / p;
        }
    }
    __syncthreads();

    // 2. Greedy.
    float t = temperature[row];
    if (t == 0.0f) {
        float best = -CUDART_INF_F;
        int bestIndex = vocab;
        for (int i = tid; i < vocab; i += SAMPLE_THREADS) {
            if (s[i] > best) { best = s[i]; bestIndex = i; }   // ascending i: the lowest id of a tie stays
        }
        for (int off = 16; off > 0; off >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, off);
            int oi = __shfl_xor_sync(0xffffffffu, bestIndex, off);
            if (ov > best || (ov == best && oi < bestIndex)) { best = ov; bestIndex = oi; }
        }
        __shared__ float wv[SAMPLE_THREADS / 32];
        __shared__ int wi[SAMPLE_THREADS / 32];
        if (tid % 32 == 0) { wv[tid / 32] = best; wi[tid / 32] = bestIndex; }
        __syncthreads();
        if (tid == 0) {
            for (int w = 1; w < SAMPLE_THREADS / 32; w++) {
                if (wv[w] > best || (wv[w] == best && wi[w] < bestIndex)) { best = wv[w]; bestIndex = wi[w]; }
            }
            out[row] = bestIndex < vocab ? bestIndex : 0;
        }
        return;
    }

    // 3a. Temperature.
    for (int i = tid; i < vocab; i += SAMPLE_THREADS) s[i] = s[i] / t;
    __syncthreads();

    // 3b. Top-k: the k-th largest score, exactly, by radix select on the order keys (MSB first).
    int k = topK[row];
    unsigned int kthKey = 0;   // keep keys >= kthKey (0 keeps everything)
    if (k > 0 && k < vocab) {
        unsigned int want = (unsigned int) (vocab - k);   // index of the k-th largest in ascending order
        unsigned int prefix = 0, mask = 0;
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int b = tid; b < 256; b += SAMPLE_THREADS) hist[b] = 0;
            __syncthreads();
            for (int i = tid; i < vocab; i += SAMPLE_THREADS) {
                unsigned int key = order_key(s[i]);
                if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xff], 1u);
            }
            __syncthreads();
            if (tid == 0) {
                unsigned int below = 0;
                int b = 0;
                for (; b < 256; b++) {
                    if (below + hist[b] > want) break;
                    below += hist[b];
                }
                want -= below;
                sharedKey = prefix | ((unsigned int) b << shift);
            }
            __syncthreads();
            prefix = sharedKey;
            mask |= 0xffu << shift;
            __syncthreads();
        }
        kthKey = prefix;
    }
    // Compare values, not keys, from here on: -0.0 and +0.0 are equal for the CPU sampler too.
    float kthValue = kthKey == 0 ? -CUDART_INF_F : key_value(kthKey);

    // 3c. Softmax weights over what top-k keeps (unnormalised: w = exp(s - max)).
    float localMax = -CUDART_INF_F;
    for (int i = tid; i < vocab; i += SAMPLE_THREADS) {
        if (s[i] >= kthValue) localMax = fmaxf(localMax, s[i]);
    }
    float maxScore = block_reduce_max(localMax, red);
    float localSum = 0.0f;
    for (int i = tid; i < vocab; i += SAMPLE_THREADS) {
        float w = s[i] >= kthValue ? __expf(s[i] - maxScore) : 0.0f;
        s[i] = w;   // from here on s holds weights
        localSum += w;
    }
    float total = block_reduce_sum(localSum, red);

    // 3d. Top-p: the largest weight threshold whose mass reaches p · total (binary search on the key bits).
    float pp = topP[row];
    unsigned int pKey = 0;
    if (pp < 1.0f) {
        unsigned int lo = 0;   // invariant: mass(key >= lo) >= p · total
        for (int bit = 31; bit >= 0; bit--) {
            unsigned int candidate = lo | (1u << bit);
            float local = 0.0f;
            for (int i = tid; i < vocab; i += SAMPLE_THREADS) {
                if (s[i] > 0.0f && order_key(s[i]) >= candidate) local += s[i];
            }
            float mass = block_reduce_sum(local, red);
            if (mass >= pp * total) lo = candidate;
        }
        pKey = lo;
        // Like the CPU's stable sort, keep everything above the threshold and, of the ids tied at
        // it, only as many as the mass needs, lowest ids first.
        float tau = key_value(pKey);
        float localAbove = 0.0f;
        for (int i = tid; i < vocab; i += SAMPLE_THREADS) {
            if (s[i] > 0.0f && order_key(s[i]) > pKey) localAbove += s[i];
        }
        float above = block_reduce_sum(localAbove, red);
        int need = max(1, (int) ceilf((pp * total - above) / tau));
        int chunkP = (vocab + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
        int beginP = tid * chunkP, endP = min(beginP + chunkP, vocab);
        int ties = 0;
        for (int i = beginP; i < endP; i++) {
            if (s[i] > 0.0f && order_key(s[i]) == pKey) ties++;
        }
        __shared__ int tieStart[SAMPLE_THREADS];
        tieStart[tid] = ties;
        __syncthreads();
        if (tid == 0) {
            int acc = 0;
            for (int c = 0; c < SAMPLE_THREADS; c++) {
                int n = tieStart[c];
                tieStart[c] = acc;
                acc += n;
            }
        }
        __syncthreads();
        int rank = tieStart[tid];
        float local = 0.0f;
        for (int i = beginP; i < endP; i++) {
            if (s[i] > 0.0f) {
                uint32_t key = order_key(s[i]);
                if (key < pKey || (key == pKey && rank++ >= need)) s[i] = 0.0f;
            }
            local += s[i];
        }
        total = block_reduce_sum(local, red);
    }

    // 3e. The draw: the first id (in id order) whose running weight exceeds u · total.
    float target = (float) (stream_uniform(seed[row], draw[row]) * (double) total);
    int chunk = (vocab + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
    int begin = tid * chunk, end = min(begin + chunk, vocab);
    float mine = 0.0f;
    for (int i = begin; i < end; i++) mine += s[i];
    chunkSum[tid] = mine;
    if (tid == 0) { sharedIndex = -1; sharedValue = 0.0f; }
    __syncthreads();
    if (tid == 0) {
        // Exclusive prefix over the 1024 chunk sums, serially: cheap next to the passes above.
        float acc = 0.0f;
        for (int c = 0; c < SAMPLE_THREADS; c++) {
            float next = acc + chunkSum[c];
            if (sharedIndex < 0 && target < next) { sharedIndex = c; sharedValue = acc; }
            chunkSum[c] = acc;
            acc = next;
        }
    }
    __syncthreads();
    if (tid == 0) {
        int chosen = -1, last = 0;
        if (sharedIndex >= 0) {
            float acc = sharedValue;
            // Scan on past the chunk: its sum and the element-wise sums round differently.
            int from = sharedIndex * chunk, to = vocab;
            for (int i = from; i < to; i++) {
                if (s[i] > 0.0f) {
                    acc += s[i];
                    last = i;
                    if (target < acc) { chosen = i; break; }
                }
            }
        }
        if (chosen < 0) {
            // Rounding put the target past the end: the last id with any weight, as the CPU sampler does.
            for (int i = vocab - 1; i >= 0; i--) if (s[i] > 0.0f) { last = i; break; }
            chosen = last;
        }
        out[row] = chosen;
    }
}
