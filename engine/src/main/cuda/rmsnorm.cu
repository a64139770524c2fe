// RMSNorm: out[t, i] = bf16(x[t, i] * rsqrt(mean_i(x[t, i]^2) + eps) * weight[i])
//   x: (rows, dim) FP32 (the residual stream); weight: (dim) FP32; out: (rows, dim) BF16, the input
//   of the next GEMM. The sum of squares is accumulated in FP32 across the block.
//   Launch: grid = rows, block = 256 (a multiple of 32).
#include "common.cuh"

extern "C" __global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ weight,
                                          bf16* __restrict__ out, int dim, float eps) {
    const float* row = x + (size_t) blockIdx.x * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        ss += row[i] * row[i];
    }
    ss = block_sum(ss);
    float scale = rsqrtf(ss / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        out[(size_t) blockIdx.x * dim + i] = __float2bfloat16(row[i] * scale * weight[i]);
    }
}
