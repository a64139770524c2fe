#!/usr/bin/env bash
# The GPU check: on a GPU box, runs every GPU test and the GPU benchmark (LongDoc and, as the
# side-by-side peer, Hugging Face transformers on the same GPU) and writes a summary to $OUT
# (summary.txt, summary.json, the JUnit reports, both benchmarks' JSON). Needs only the bundle
# that deploy/gpu/bundle.sh made (no JDK, no network); within 8 minutes on one H200 (the steps'
# time limits add up to 460 s: tests 150, LongDoc benchmark 190, transformers peer 120).
#
#   deploy/gpu/bundle.sh             # on the development machine
#   OUT=/tmp/gpu-check deploy/gpu/check.sh [--skip-bench]
#
# cuBLAS: JCuda 12.6's natives need libcublas.so.12. When the box has only cuBLAS 13, the bundle's
# forwarding libcublas.so.12 (deploy/gpu/cublas-shim.sh) is put first on the library path and
# pointed at the libcublas.so.13 found here. Exit 0 when every GPU test passed, 1 otherwise.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="${LONGDOC_GPU_BUNDLE:-$root/build/gpu-bundle}"
out="${OUT:-$root/build/gpu-check}"
skip_bench=0
[[ "${1:-}" == "--skip-bench" ]] && skip_bench=1
mkdir -p "$out"
java="$bundle/runtime/bin/java"
if [[ ! -x "$java" ]]; then
    echo "check: no bundle at $bundle (run deploy/gpu/bundle.sh first)" >&2
    exit 2
fi
started=$(date +%s)
log() { echo "check: $*" | tee -a "$out/check.log" >&2; }

# The GPU and driver.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi > "$out/nvidia-smi.txt" 2>&1; then
    gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
    log "GPU: $gpu"
else
    gpu=""
    log "no GPU: nvidia-smi is missing or failed; the GPU tests will fail (LONGDOC_REQUIRE_GPU=1), which is the point"
fi

# Spark's GPU discovery script, for real.
discovery="$(bash "$root/deploy/gpu/discover-gpus.sh" 2>&1)" || true
log "discover-gpus.sh: $discovery"

# cuBLAS 12 natively, or cuBLAS 13 behind the shim.
cublas_note="none found"
if ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.12 '; then
    cublas_note="libcublas.so.12 (native)"
else
    cublas13="$(ldconfig -p 2>/dev/null | awk '/libcublas\.so\.13 / {print $NF; exit}')"
    if [[ -z "$cublas13" ]]; then
        cublas13="$(python3 - 2>/dev/null <<'PY'
import glob, os, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()] + ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu"]
for d in dirs:
    for f in glob.glob(os.path.join(d, "**", "libcublas.so.13*"), recursive=True):
        print(f); sys.exit(0)
PY
)"
    fi
    if [[ -n "$cublas13" ]]; then
        export LONGDOC_CUBLAS_LIBRARY="$cublas13"
        export LD_LIBRARY_PATH="$bundle/shim:$(dirname "$cublas13")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        cublas_note="libcublas.so.13 at $cublas13, through the bundle's forwarding libcublas.so.12"
        # The Lt library cuBLAS 13 loads sits beside it.
    fi
fi
log "cuBLAS: $cublas_note"

cp="$(ls "$bundle"/jars/*.jar | grep -v console-standalone | tr '\n' ':')"
console="$(ls "$bundle"/jars/junit-platform-console-standalone-*.jar)"
jvm=(--add-modules jdk.incubator.vector -Xmx8g)

# Every test of the CUDA package; a missing GPU fails them instead of skipping.
log "GPU tests"
LONGDOC_REQUIRE_GPU=1 LONGDOC_SHARED="$bundle/shared" timeout 150 "$java" "${jvm[@]}" -jar "$console" execute \
    --class-path "$cp" --select-package io.longdoc.engine.cuda --reports-dir "$out/junit" --details=tree \
    --disable-banner --fail-if-no-tests > "$out/gpu-tests.txt" 2>&1
tests_rc=$?
tail -25 "$out/gpu-tests.txt" >&2

bench_rc=0
if [[ -n "$gpu" && $skip_bench -eq 0 ]]; then
    log "LongDoc GPU benchmark"
    timeout 190 "$java" "${jvm[@]}" -Xmx16g -cp "$cp" io.longdoc.engine.cuda.GpuBench --out "$out/gpu-bench.json" \
        > "$out/gpu-bench.txt" 2>&1 || bench_rc=$?
    log "Hugging Face transformers peer"
    timeout 120 python3 "$root/deploy/gpu/hf_peer.py" --out "$out/hf-peer.json" > "$out/hf-peer.txt" 2>&1 || bench_rc=$?
fi

GPU="$gpu" CUBLAS="$cublas_note" DISCOVERY="$discovery" TESTS_RC=$tests_rc BENCH_RC=$bench_rc SECONDS_TOTAL=$(( $(date +%s) - started )) \
python3 - "$out" <<'PY'
import glob, json, os, sys
import xml.etree.ElementTree as ET
out = sys.argv[1]
tests = {"run": 0, "failed": 0, "skipped": 0, "failures": []}
for f in glob.glob(os.path.join(out, "junit", "*.xml")):
    for case in ET.parse(f).getroot().iter("testcase"):
        tests["run"] += 1
        name = case.get("classname", "") + "." + case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            tests["failed"] += 1
            node = case.find("failure") if case.find("failure") is not None else case.find("error")
            tests["failures"].append({"test": name, "message": (node.get("message") or "")[:300]})
        elif case.find("skipped") is not None:
            tests["skipped"] += 1
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
summary = {"gpu": os.environ["GPU"] or None, "cublas": os.environ["CUBLAS"], "discover_gpus": os.environ["DISCOVERY"], "tests": tests,
           "tests_exit_code": int(os.environ["TESTS_RC"]), "bench_exit_code": int(os.environ["BENCH_RC"]),
           "longdoc": load("gpu-bench.json"), "hf_peer": load("hf-peer.json"), "seconds": int(os.environ["SECONDS_TOTAL"])}
lines = ["GPU: %s" % (summary["gpu"] or "none"), "cuBLAS: %s" % summary["cublas"], "discover-gpus.sh: %s" % summary["discover_gpus"],
         "GPU tests: %d run, %d failed, %d skipped" % (tests["run"], tests["failed"], tests["skipped"])]
lines += ["  FAILED %s: %s" % (f["test"], f["message"]) for f in tests["failures"]]
ld, hf = summary["longdoc"], summary["hf_peer"]
if ld:
    lines.append("LongDoc (%s):" % ld.get("device"))
    for p in ld.get("prefill", []):
        lines.append("  prefill %6d tokens: %9.0f tok/s  MFU %.1f%%" % (p["tokens"], p["tokens_per_second"], 100 * p["mfu"]))
    for d in ld.get("decode", []):
        if "skipped" in d:
            lines.append("  decode %2d x %d: skipped (%s)" % (d["sequences"], d["context"], d["skipped"]))
        else:
            lines.append("  decode %2d x %5d: %8.1f tok/s  %.2f TB/s (%.0f%% of HBM)" % (d["sequences"], d["context"], d["tokens_per_second"],
                         d["effective_hbm_tbps"], 100 * d["hbm_share"]))
    if "documents_per_hour_32k_256" in ld:
        lines.append("  32K-token documents with 256 new tokens: %.0f per hour" % ld["documents_per_hour_32k_256"])
if hf:
    lines.append("Hugging Face peer (%s):" % hf.get("peer"))
    for p in hf.get("prefill", []):
        lines.append("  prefill %6d tokens: %9.0f tok/s  MFU %.1f%%" % (p["tokens"], p["tokens_per_second"], 100 * p["mfu"]))
    for d in hf.get("decode", []):
        lines.append("  decode %2d x %5d: %s" % (d["sequences"], d["context"], d.get("skipped") or "%.1f tok/s" % d["tokens_per_second"]))
    if ld and "documents_per_hour_32k_256" in ld and "documents_per_hour_32k_256" in hf:
        lines.append("  documents/hour LongDoc / HF: %.2f" % (ld["documents_per_hour_32k_256"] / hf["documents_per_hour_32k_256"]))
lines.append("took %d s" % summary["seconds"])
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
open(os.path.join(out, "summary.txt"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
[[ $tests_rc -eq 0 ]] && exit 0 || exit 1
