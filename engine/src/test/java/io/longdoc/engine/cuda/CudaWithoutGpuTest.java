package io.longdoc.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** What can be checked of the CUDA backend on a machine without a GPU: the packaged kernels and the fallbacks. */
class CudaWithoutGpuTest {
    @Test
    void everyKernelIsCompiledIntoTheJar() {
        boolean nvcc = Files.isExecutable(Path.of("/usr/local/bin/nvcc")) || Files.isExecutable(Path.of("/usr/local/cuda/bin/nvcc"));
        assumeTrue(nvcc || CudaDevice.class.getResource("/cuda/attention.fatbin") != null, "skipped: this build had no nvcc");
        for (String module : CudaDevice.MODULES) {
            byte[] fatbin = CudaDevice.fatbin(module);
            // A fatbin starts with its magic number 0xBA55ED50 (little-endian).
            assertEquals(0xBA55ED50, (fatbin[0] & 0xff) | (fatbin[1] & 0xff) << 8 | (fatbin[2] & 0xff) << 16 | (fatbin[3] & 0xff) << 24, module);
            String text = new String(fatbin, StandardCharsets.ISO_8859_1);
            for (String k : CudaDevice.KERNELS.get(module)) {
                assertTrue(text.contains(k), module + ".fatbin has no " + k);
            }
        }
    }

    @Test
    void withoutAGpuCudaIsAClearErrorAndAutoUsesTheCpu() {
        String missing = CudaDevice.probe();
        assumeTrue(missing != null, "skipped: this machine has a usable GPU");
        assertNotNull(missing);
        Path model = Shared.require("models/stories260k");
        EngineSettings cuda = EngineSettings.defaults().withBackend("cuda");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Engine.load(model, cuda));
        assertTrue(e.getMessage().startsWith("backend cuda: "), e.getMessage());
        try (Engine auto = Engine.load(model, cuda.withBackend("auto"))) {
            assertTrue(auto.backend().name().startsWith("cpu"), auto.backend().name());
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals(1.0f, Bf16.round(1.0f));
        assertEquals(1.0f, Bf16.round(1.0f + 0x1p-8f));             // halfway between 1 and 1 + 2^-7: ties to even (1.0)
        assertEquals(1.0f + 0x1p-7f, Bf16.round(1.0f + 0x1p-8f + 0x1p-9f + 0x1p-10f));
        assertEquals(1.0f + 0x1p-6f, Bf16.round(1.0f + 0x1p-7f + 0x1p-8f));   // halfway above an odd value: up to even
        assertTrue(Float.isNaN(Bf16.round(Float.NaN)));
        assertEquals(Float.POSITIVE_INFINITY, Bf16.round(Float.POSITIVE_INFINITY));
    }
}
