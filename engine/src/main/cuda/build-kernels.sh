#!/usr/bin/env bash
# Compiles every kernel file here into a fatbin (SASS for sm_80, sm_86, sm_89 and sm_90, plus
# compute_90 PTX for newer GPUs) under OUT/cuda/, packaged into the engine jar and loaded with
# cuModuleLoadData. Run by Maven (generate-resources). Without nvcc the build goes on, CPU only.
# A compile error fails the build. The -Xptxas -v report (registers, spills, shared memory) stays
# in the build output on purpose.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build-kernels.sh OUTPUT_DIR}/cuda"
NVCC="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [[ -z "$NVCC" ]]; then
    echo "[longdoc] nvcc not found: building without CUDA kernels (the CUDA backend will be unavailable; CPU only)"
    exit 0
fi
mkdir -p "$out"
arch=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 -gencode arch=compute_89,code=sm_89
      -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90)
for cu in "$src"/*.cu; do
    name="$(basename "$cu" .cu)"
    target="$out/$name.fatbin"
    # Rebuild only when the source or a shared header is newer than the fatbin.
    if [[ -f "$target" && "$target" -nt "$cu" && "$target" -nt "$src/common.cuh" ]]; then
        continue
    fi
    echo "[longdoc] nvcc $name.cu"
    "$NVCC" -fatbin -O3 -std=c++17 -Xptxas -v "${arch[@]}" -o "$target.tmp" "$cu"
    mv "$target.tmp" "$target"
done
echo "[longdoc] CUDA kernels: $(ls "$out" | tr '\n' ' ')"
