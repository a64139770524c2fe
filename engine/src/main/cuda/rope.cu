// RoPE on queries and keys, then keys and values into the paged KV cache.
//
// rope_cache_kernel, for token t of the step:
//   qkv: (tokens, Q + 2K) FP32, the fused projection output [q | k | v], Q = heads*headDim, K = kvHeads*headDim.
//   q and k heads are rotated in place, rotate_half layout (dimension i pairs with i + headDim/2):
//     x0' = x0*cos - x1*sin,   x1' = x1*cos + x0*sin
//   cos, sin: (tokens, headDim/2) FP32, computed on the host exactly as the CPU backend does, so
//   rope_ratio, linear, dynamic-NTK and llama3 scaling need no device code.
//   k and v are then stored as BF16 at the token's cache slot: kCache/vCache (slots, K), slot[t].
//   Launch: grid = tokens, block = 128.
#include "common.cuh"

extern "C" __global__ void rope_cache_kernel(float* __restrict__ qkv, const float* __restrict__ cos,
                                             const float* __restrict__ sin, const int* __restrict__ slot,
                                             bf16* __restrict__ kCache, bf16* __restrict__ vCache,
                                             int heads, int kvHeads, int headDim) {
    int t = blockIdx.x;
    int half = headDim / 2;
    int qDim = heads * headDim, kvDim = kvHeads * headDim;
    float* row = qkv + (size_t) t * (qDim + 2 * kvDim);
    const float* c = cos + (size_t) t * half;
    const float* s = sin + (size_t) t * half;
    // q heads then k heads: (heads + kvHeads) * half rotations.
    for (int i = threadIdx.x; i < (heads + kvHeads) * half; i += blockDim.x) {
        int head = i / half, j = i % half;
        float* v = row + head * headDim;   // k heads follow the q heads directly in the row
        float x0 = v[j], x1 = v[j + half];
        v[j] = x0 * c[j] - x1 * s[j];
        v[j + half] = x1 * c[j] + x0 * s[j];
    }
    __syncthreads();
    size_t base = (size_t) slot[t] * kvDim;
    for (int i = threadIdx.x; i < kvDim; i += blockDim.x) {
        kCache[base + i] = __float2bfloat16(row[qDim + i]);
        vCache[base + i] = __float2bfloat16(row[qDim + kvDim + i]);
    }
}
