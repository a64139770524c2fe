package io.longdoc.engine.cuda;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * GPU tests call {@link #require()} first: without a usable GPU they are skipped with the reason,
 * unless LONGDOC_REQUIRE_GPU=1 (deploy/gpu/check.sh sets it), where a missing GPU is a failure, so
 * a GPU run can never pass by testing nothing.
 */
final class Gpu {
    private static final String MISSING = CudaDevice.probe();

    private Gpu() {
    }

    static void require() {
        if (MISSING == null) {
            return;
        }
        if ("1".equals(System.getenv("LONGDOC_REQUIRE_GPU"))) {
            fail("LONGDOC_REQUIRE_GPU=1 but the GPU test cannot run: " + MISSING);
        }
        assumeTrue(false, "skipped (GPU test, no GPU here): " + MISSING);
    }
}
