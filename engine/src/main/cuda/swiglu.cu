// SwiGLU: out[t, j] = bf16(silu(g) * u), g = gateUp[t, j], u = gateUp[t, F + j], silu(g) = g / (1 + e^-g)
//   gateUp: (tokens, 2F) FP32, the fused [gate | up] projection; out: (tokens, F) BF16 (input of the down GEMM).
//   Launch: grid = ceil(tokens * F / 256), block = 256; one element per thread.
#include "common.cuh"

extern "C" __global__ void swiglu_kernel(const float* __restrict__ gateUp, bf16* __restrict__ out, int tokens, int hidden) {
    size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t) tokens * hidden) return;
    size_t t = i / hidden, j = i % hidden;
    float g = gateUp[t * 2 * hidden + j];
    float u = gateUp[t * 2 * hidden + hidden + j];
    out[i] = __float2bfloat16(g / (1.0f + __expf(-g)) * u);
}
