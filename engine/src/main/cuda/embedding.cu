// Embedding lookup and row gathers.
//
// embedding_gather_kernel: x[t, :] = float(table[ids[t], :])
//   table: (vocab, dim) BF16, row-major; ids: (tokens) int32, checked on the host; x: (tokens, dim) FP32.
//   Launch: grid = tokens, block = 256; each block copies one row.
//
// gather_rows_kernel: out[i, :] = x[rows[i], :]   (the positions whose logits are wanted)
//   x: (tokens, dim) FP32; rows: (count) int32; out: (count, dim) FP32.
//   Launch: grid = count, block = 256.
#include "common.cuh"

extern "C" __global__ void embedding_gather_kernel(const bf16* __restrict__ table, const int* __restrict__ ids,
                                                   float* __restrict__ x, int dim) {
    int t = blockIdx.x;
    const bf16* row = table + (size_t) ids[t] * dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        x[(size_t) t * dim + d] = __bfloat162float(row[d]);
    }
}

extern "C" __global__ void gather_rows_kernel(const float* __restrict__ x, const int* __restrict__ rows,
                                              float* __restrict__ out, int dim) {
    int i = blockIdx.x;
    const float* src = x + (size_t) rows[i] * dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        out[(size_t) i * dim + d] = src[d];
    }
}
