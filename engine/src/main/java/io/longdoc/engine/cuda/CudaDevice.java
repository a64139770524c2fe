package io.longdoc.engine.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.runtime.cudaStream_t;

/**
 * One GPU as the engine uses it: the device's primary context, one stream, the kernel modules
 * (the fatbins the build put under /cuda in the engine jar), a cuBLAS handle on that stream, and
 * every device allocation, freed on close. All JCuda and JCublas calls throw on a non-success
 * status (exceptions enabled), so no status goes unchecked.
 */
public final class CudaDevice implements AutoCloseable {
    /** Kernel modules packaged by engine/src/main/cuda/build-kernels.sh (one per .cu file) and the kernels each defines. */
    static final Map<String, List<String>> KERNELS = Map.of(
            "attention", List.of("attention_tile_kernel", "attention_merge_kernel"),
            "embedding", List.of("embedding_gather_kernel", "gather_rows_kernel"),
            "rmsnorm", List.of("rmsnorm_kernel"),
            "rope", List.of("rope_cache_kernel"),
            "sampling", List.of("sample_kernel"),
            "swiglu", List.of("swiglu_kernel"));
    static final String[] MODULES = KERNELS.keySet().stream().sorted().toArray(String[]::new);

    private final int ordinal;
    private final String name;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    final CUstream stream = new CUstream();
    final cublasHandle cublas = new cublasHandle();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final List<CUdeviceptr> allocations = new ArrayList<>();
    private long allocatedBytes;

    public CudaDevice(int ordinal) {
        String missing = probe();
        if (missing != null) {
            throw new IllegalStateException("CUDA backend unavailable: " + missing);
        }
        int[] count = new int[1];
        cuDeviceGetCount(count);
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new IllegalStateException("CUDA device " + ordinal + " does not exist (" + count[0] + " visible)");
        }
        this.ordinal = ordinal;
        cuDeviceGet(device, ordinal);
        byte[] nameBytes = new byte[256];
        cuDeviceGetName(nameBytes, nameBytes.length, device);
        int end = 0;
        while (end < nameBytes.length && nameBytes[end] != 0) {
            end++;
        }
        this.name = new String(nameBytes, 0, end, StandardCharsets.US_ASCII);
        cuDevicePrimaryCtxRetain(context, device);
        makeCurrent();
        // A blocking stream: it waits for the synchronous uploads (cuMemcpyHtoD from pageable Java
        // arrays runs on the default stream and may still be in flight when it returns).
        cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT);
        JCublas2.setExceptionsEnabled(true);
        JCublas2.cublasCreate(cublas);
        JCublas2.cublasSetStream(cublas, new cudaStream_t(stream));
        for (String module : MODULES) {
            CUmodule m = new CUmodule();
            cuModuleLoadData(m, fatbin(module));
            for (String kernel : KERNELS.get(module)) {
                CUfunction f = new CUfunction();
                cuModuleGetFunction(f, m, kernel);
                functions.put(kernel, f);
            }
        }
    }

    /**
     * Null when a CUDA device can be used here, else why not (no kernels in this build, no driver,
     * no device). Never throws, so {@code auto} can fall back to the CPU with one log line.
     */
    public static synchronized String probe() {
        if (probed == null) {
            probed = java.util.Optional.ofNullable(firstProbe());
        }
        return probed.orElse(null);
    }

    private static java.util.Optional<String> probed;   // JCuda's natives load once: the first answer is the answer

    private static String firstProbe() {
        for (String module : MODULES) {
            if (CudaDevice.class.getResource("/cuda/" + module + ".fatbin") == null) {
                return "this build has no CUDA kernels (nvcc was not found when it was built)";
            }
        }
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            return count[0] == 0 ? "no CUDA device is visible" : null;
        } catch (Throwable t) {   // UnsatisfiedLinkError without libcuda.so.1, CudaException without a device
            String why = String.valueOf(t.getMessage());
            if (t instanceof UnsatisfiedLinkError && why.contains("libcuda.so")) {
                return "the NVIDIA driver library libcuda.so.1 is not installed or not on the library path";
            }
            return "no usable CUDA driver (" + t.getClass().getSimpleName() + ": " + why.lines().findFirst().orElse("") + ")";
        }
    }

    static byte[] fatbin(String module) {
        try (InputStream in = CudaDevice.class.getResourceAsStream("/cuda/" + module + ".fatbin")) {
            if (in == null) {
                throw new IllegalStateException("kernel module /cuda/" + module + ".fatbin is missing from the engine jar");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read kernel module " + module, e);
        }
    }

    public String name() {
        return name;
    }

    public int ordinal() {
        return ordinal;
    }

    /** The CUDA context is per thread: every thread that launches work calls this first. */
    public void makeCurrent() {
        cuCtxSetCurrent(context);
    }

    CUfunction function(String kernel) {
        CUfunction f = functions.get(kernel);
        if (f == null) {
            throw new IllegalStateException("no kernel " + kernel);
        }
        return f;
    }

    /** {free, total} device memory in bytes. */
    public long[] memoryInfo() {
        long[] free = new long[1], total = new long[1];
        cuMemGetInfo(free, total);
        return new long[] {free[0], total[0]};
    }

    public CUdeviceptr allocate(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        cuMemAlloc(p, Math.max(bytes, 1));
        allocations.add(p);
        allocatedBytes += bytes;
        return p;
    }

    public long allocatedBytes() {
        return allocatedBytes;
    }

    public void free(CUdeviceptr p) {
        if (allocations.remove(p)) {
            cuMemFree(p);
        }
    }

    public void upload(CUdeviceptr dst, float[] src, int count) {
        cuMemcpyHtoD(dst, Pointer.to(src), (long) count * Float.BYTES);
    }

    public void upload(CUdeviceptr dst, int[] src, int count) {
        cuMemcpyHtoD(dst, Pointer.to(src), (long) count * Integer.BYTES);
    }

    public void upload(CUdeviceptr dst, short[] src, int count) {
        cuMemcpyHtoD(dst, Pointer.to(src), (long) count * Short.BYTES);
    }

    /** Waits for the stream, then copies. */
    public void download(float[] dst, CUdeviceptr src, int count) {
        synchronize();
        cuMemcpyDtoH(Pointer.to(dst), src, (long) count * Float.BYTES);
    }

    public void download(short[] dst, CUdeviceptr src, int count) {
        synchronize();
        cuMemcpyDtoH(Pointer.to(dst), src, (long) count * Short.BYTES);
    }

    /** Page-locked host memory (so copies from and to it run asynchronously on the stream); freed on close. */
    public java.nio.ByteBuffer allocatePinned(long bytes) {
        Pointer p = new Pointer();
        jcuda.driver.JCudaDriver.cuMemAllocHost(p, bytes);
        pinned.add(p);
        java.nio.ByteBuffer b = p.getByteBuffer(0, bytes).order(java.nio.ByteOrder.nativeOrder());
        pinnedByBuffer.put(b, p);
        return b;
    }

    private final List<Pointer> pinned = new ArrayList<>();
    private final java.util.IdentityHashMap<java.nio.ByteBuffer, Pointer> pinnedByBuffer = new java.util.IdentityHashMap<>();

    /** Frees pinned memory from {@link #allocatePinned}. */
    public void freePinned(java.nio.ByteBuffer buffer) {
        Pointer p = pinnedByBuffer.remove(buffer);
        if (p != null && pinned.remove(p)) {
            jcuda.driver.JCudaDriver.cuMemFreeHost(p);
        }
    }

    /** bytes [offset, offset + length) of a pinned buffer as their own buffer (position 0, native order). */
    public java.nio.ByteBuffer pinnedSlice(java.nio.ByteBuffer pinnedBuffer, long offset, long length) {
        return pinnedBuffer.duplicate().position((int) offset).limit((int) (offset + length)).slice().order(java.nio.ByteOrder.nativeOrder());
    }

    public void uploadAsync(CUdeviceptr dst, java.nio.ByteBuffer pinnedSrc, long bytes) {
        jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync(dst, Pointer.to(pinnedSrc), bytes, stream);
    }

    public void downloadAsync(java.nio.ByteBuffer pinnedDst, CUdeviceptr src, long bytes) {
        jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync(Pointer.to(pinnedDst), src, bytes, stream);
    }

    public void synchronize() {
        cuStreamSynchronize(stream);
    }

    @Override
    public void close() {
        makeCurrent();
        synchronize();
        for (CUdeviceptr p : allocations) {
            cuMemFree(p);
        }
        allocations.clear();
        for (Pointer p : pinned) {
            jcuda.driver.JCudaDriver.cuMemFreeHost(p);
        }
        pinned.clear();
        JCublas2.cublasDestroy(cublas);
        cuStreamDestroy(stream);
        cuDevicePrimaryCtxRelease(device);
    }
}
