#!/usr/bin/env bash
# Builds libcublas.so.12 as a forwarding library for a box that has only cuBLAS 13.
#
# JCuda 12.6's JCublas natives link libcublas.so.12 and ask for every cuBLAS symbol with the
# symbol version "libcublas.so.12", so they do not load against cuBLAS 13. This script reads the
# symbols the JCublas library imports, and generates a library of that name that defines each of
# them under that version as a jump to the same symbol of the real cuBLAS, opened with dlopen
# when the shim loads ($LONGDOC_CUBLAS_LIBRARY, default libcublas.so.13). A symbol cuBLAS 13 lacks
# aborts with its name when called, never silently.
#
#   deploy/gpu/cublas-shim.sh LIBJCUBLAS2.so OUTPUT_DIR      -> OUTPUT_DIR/libcublas.so.12
# Needs gcc and nm (binutils). x86-64 only.
set -euo pipefail
lib="${1:?usage: cublas-shim.sh LIBJCUBLAS2.so OUTPUT_DIR}"
out="${2:?usage: cublas-shim.sh LIBJCUBLAS2.so OUTPUT_DIR}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

nm -D --undefined-only "$lib" | awk '$2 ~ /@libcublas\.so\.12$/ { sub(/@.*/, "", $2); print $2 }' | sort -u > "$work/symbols"
count=$(wc -l < "$work/symbols")
if [[ "$count" -eq 0 ]]; then
    echo "cublas-shim: $lib imports no libcublas.so.12 symbols" >&2
    exit 1
fi

{
    echo '#define _GNU_SOURCE'
    echo '#include <dlfcn.h>'
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo "#define COUNT $count"
    echo '__attribute__((visibility("hidden"))) void *longdoc_cublas_target[COUNT];'
    echo 'static const char *names[COUNT] = {'
    sed 's/.*/    "&",/' "$work/symbols"
    echo '};'
    cat <<'C'
__attribute__((visibility("hidden"))) void longdoc_cublas_missing(long i) {
    fprintf(stderr, "longdoc cublas shim: %s is not in the cuBLAS library loaded (%s)\n", names[i],
            getenv("LONGDOC_CUBLAS_LIBRARY") ? getenv("LONGDOC_CUBLAS_LIBRARY") : "libcublas.so.13");
    abort();
}
__attribute__((constructor)) static void longdoc_cublas_open(void) {
    const char *path = getenv("LONGDOC_CUBLAS_LIBRARY");
    void *real = dlopen(path ? path : "libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!real) {
        fprintf(stderr, "longdoc cublas shim: cannot open %s: %s\n", path ? path : "libcublas.so.13", dlerror());
        return;   /* every call then aborts with its name */
    }
    for (int i = 0; i < COUNT; i++) longdoc_cublas_target[i] = dlsym(real, names[i]);
}
C
    # One trampoline per symbol: jump to the real function, arguments untouched.
    i=0
    while read -r sym; do
        cat <<ASM
__asm__(".globl $sym\n.type $sym, @function\n$sym:\n"
        "    movq longdoc_cublas_target+$((8 * i))(%rip), %rax\n"
        "    testq %rax, %rax\n    jz 1f\n    jmp *%rax\n"
        "1:  movq \$$i, %rdi\n    jmp longdoc_cublas_missing\n.size $sym, .-$sym\n");
ASM
        i=$((i + 1))
    done < "$work/symbols"
} > "$work/shim.c"

{
    echo 'libcublas.so.12 {'
    echo '  global:'
    sed 's/.*/    &;/' "$work/symbols"
    echo '  local: *;'
    echo '};'
} > "$work/shim.map"

gcc -shared -fPIC -O2 -o "$out/libcublas.so.12" "$work/shim.c" -Wl,--version-script="$work/shim.map" -Wl,-soname,libcublas.so.12 -ldl
echo "cublas-shim: $out/libcublas.so.12 forwards $count symbols (version libcublas.so.12) to \${LONGDOC_CUBLAS_LIBRARY:-libcublas.so.13}"
