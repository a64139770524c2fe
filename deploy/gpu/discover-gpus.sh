#!/usr/bin/env bash
# Spark's GPU discovery script (spark.executor.resource.gpu.discoveryScript): prints the GPUs of
# this node as {"name":"gpu","addresses":["0","1",...]}. Needs nvidia-smi (the NVIDIA driver).
set -euo pipefail
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "discover-gpus.sh: nvidia-smi not found: no NVIDIA driver on this node" >&2
  exit 1
fi
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | awk 'NF { printf "%s\"%s\"", (n++ ? "," : ""), $1 }')
echo "{\"name\":\"gpu\",\"addresses\":[${addresses}]}"
