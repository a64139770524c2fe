#!/usr/bin/env bash
# Packs everything deploy/gpu/check.sh needs on a GPU box that has no JDK and no network, into
# build/gpu-bundle (or $1), under the 64 MiB the device tool carries:
#   runtime/   a jlink'd Java runtime (the modules the engine and JUnit use, the Vector API)
#   jars/      the engine jar (CUDA fatbins inside), its dependencies, the engine's test classes,
#              JUnit's console launcher, and JCuda's two native libraries it needs (driver, cuBLAS)
#   shared/    the test models the GPU tests compare on (stories260k, index-tiny-random)
#   shim/      libcublas.so.12 forwarding to cuBLAS 13 (deploy/gpu/cublas-shim.sh), for CUDA-13-only boxes
# Run on the development machine (JDK 17, Maven, gcc):   deploy/gpu/bundle.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/build/gpu-bundle}"
shared="${LONGDOC_SHARED:-$root/../shared}"
junit_platform="${JUNIT_PLATFORM_VERSION:-1.14.1}"
jcuda="12.6.0"
limit=$((64 * 1024 * 1024))

cd "$root"
echo "bundle: building the engine and its tests" >&2
mvn -q -B -DskipTests -pl engine -am install >&2
rm -rf "$out"
mkdir -p "$out/jars" "$out/shared/models" "$out/shim"

# Engine, its compile-scope dependencies (without JCuda's natives jars: only two libraries of them are needed), test classes.
cp engine/target/longdoc-engine-*.jar "$out/jars/"
mvn -q -B -pl engine dependency:build-classpath -Dmdep.includeScope=compile -Dmdep.outputFile="$out/cp.txt" >&2
tr ':' '\n' < "$out/cp.txt" | grep -v -e '-natives-' | while read -r jar; do cp "$jar" "$out/jars/"; done
rm "$out/cp.txt"
(cd engine/target/test-classes && jar cf "$out/jars/longdoc-engine-tests.jar" .)
mvn -q -B dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$junit_platform" \
    -DoutputDirectory="$out/jars" >&2
natives="$(mktemp -d)"
trap 'rm -rf "$natives"' EXIT
m2="${MAVEN_REPO:-$HOME/.m2/repository}"
(cd "$natives" && unzip -q -o "$m2/org/jcuda/jcuda-natives/$jcuda/jcuda-natives-$jcuda-linux-x86_64.jar" "lib/libJCudaDriver-*" \
    && unzip -q -o "$m2/org/jcuda/jcublas-natives/$jcuda/jcublas-natives-$jcuda-linux-x86_64.jar" "lib/libJCublas2-*")
(cd "$natives" && jar cf "$out/jars/jcuda-natives-trimmed.jar" lib)

# The cuBLAS 12 → 13 forwarding library, built here (gcc) from the symbols JCublas2 imports.
deploy/gpu/cublas-shim.sh "$natives"/lib/libJCublas2-*.so "$out/shim" >&2

# Test models.
for m in stories260k index-tiny-random; do
    if [[ -d "$shared/models/$m" ]]; then cp -r "$shared/models/$m" "$out/shared/models/"; else echo "bundle: $shared/models/$m is absent" >&2; fi
done

# A Java runtime with just the modules needed.
jlink="${JAVA_HOME:+$JAVA_HOME/bin/}jlink"
"$jlink" --add-modules java.base,java.logging,java.management,java.xml,java.naming,jdk.zipfs,jdk.incubator.vector,jdk.unsupported \
    --strip-debug --no-man-pages --no-header-files --compress=2 --output "$out/runtime" 2>/dev/null \
  || "$jlink" --add-modules java.base,java.logging,java.management,java.xml,java.naming,jdk.zipfs,jdk.incubator.vector,jdk.unsupported \
    --strip-debug --no-man-pages --no-header-files --compress=zip-6 --output "$out/runtime"

size=$(du -sb "$out" | cut -f1)
echo "bundle: $out, $((size / 1024 / 1024)) MiB (limit 64 MiB)"
if (( size > limit )); then
    echo "bundle: too large for the device tool's 64 MiB" >&2
    exit 1
fi
