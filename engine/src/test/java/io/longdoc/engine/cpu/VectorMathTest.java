package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.runtime.Chunk;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The SIMD kernels against the scalar ones they stand beside. */
class VectorMathTest {
    @Test
    void simdKernelsEqualScalarOnOddSizes() {
        VectorMath fast = VectorMath.get(), slow = VectorMath.scalar();
        assertTrue(VectorMath.simdAvailable(), "tests run with --add-modules jdk.incubator.vector; the SIMD path must be the one tested");
        assertTrue(fast.name().startsWith("simd"), fast.name());
        Random r = new Random(1);
        for (int n : new int[] {1, 7, 8, 15, 16, 31, 33, 64, 100, 257, 1000}) {
            float[] a = new float[n + 5], b = new float[n + 5], c = new float[n], d = new float[n], e = new float[n];
            for (int i = 0; i < a.length; i++) {
                a[i] = r.nextFloat() - 0.5f;
                b[i] = r.nextFloat() - 0.5f;
            }
            for (int i = 0; i < n; i++) {
                c[i] = r.nextFloat();
                d[i] = r.nextFloat();
                e[i] = r.nextFloat();
            }
            assertEquals(slow.dot(a, 3, b, 5, n), fast.dot(a, 3, b, 5, n), 1e-4f * n, "dot n=" + n);
            float[] o1 = new float[4], o2 = new float[4];
            slow.dot4(a, 2, b, c, d, e, n, o1);
            fast.dot4(a, 2, b, c, d, e, n, o2);
            for (int k = 0; k < 4; k++) {
                assertEquals(o1[k], o2[k], 1e-4f * n, "dot4 n=" + n);
            }
            float[] p1 = new float[8], p2 = new float[8];
            slow.dot2x4(a, 0, 4, b, c, d, e, n, p1);
            fast.dot2x4(a, 0, 4, b, c, d, e, n, p2);
            for (int k = 0; k < 8; k++) {
                assertEquals(p1[k], p2[k], 1e-4f * n, "dot2x4 n=" + n);
            }
            float[] y1 = b.clone(), y2 = b.clone();
            slow.axpy(0.37f, a, 1, y1, 2, n);
            fast.axpy(0.37f, a, 1, y2, 2, n);
            for (int i = 0; i < y1.length; i++) {
                assertEquals(y1[i], y2[i], 1e-6f, "axpy n=" + n);
            }
        }
    }

    @Test
    void wholeForwardPassAgreesBetweenScalarAndSimd() {
        Path dir = Shared.require("models/index-tiny-random");
        ModelConfig c = ModelConfig.load(dir);
        LlamaWeights w = new LlamaWeights(c, Weights.open(dir));
        int[] tokens = new int[40];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = (i * 37 + 11) % c.vocabSize();
        }
        int[] table = {0, 1, 2};
        Chunk chunk = new Chunk(table, 0, tokens, new int[] {0, 20, 39}, tokens.length);
        try (CpuBackend fast = new CpuBackend(w, 4, 16, 2, VectorMath.get());
             CpuBackend slow = new CpuBackend(w, 4, 16, 1, VectorMath.scalar())) {
            float[][] a = fast.forward(List.of(chunk));
            float[][] b = slow.forward(List.of(chunk));
            for (int i = 0; i < a.length; i++) {
                for (int j = 0; j < a[i].length; j++) {
                    assertEquals(b[i][j], a[i][j], 1e-4f, "row " + i + " logit " + j);
                }
            }
        }
    }

    @Test
    void fastExpIsWithinTwoUlpOfMathExp() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(9);
        for (int i = 0; i < 1_000_000; i++) {
            float x = (float) (-87.0 * random.nextDouble());
            float want = (float) Math.exp(x), got = FastExp.exp(x);
            assertTrue(Math.abs(want - got) <= 2 * Math.ulp(want), "exp(" + x + "): " + want + " vs " + got);
        }
        org.junit.jupiter.api.Assertions.assertEquals(1f, FastExp.exp(0f));
        org.junit.jupiter.api.Assertions.assertEquals(0f, FastExp.exp(-100f));
        org.junit.jupiter.api.Assertions.assertEquals(0f, FastExp.exp(Float.NEGATIVE_INFINITY));
        for (float x : new float[] {1f, 10f, 50f, 88f}) {
            assertTrue(Math.abs((float) Math.exp(x) - FastExp.exp(x)) <= 2 * Math.ulp((float) Math.exp(x)), "exp(" + x + ")");
        }
    }
}
