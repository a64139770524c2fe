package io.longdoc.job.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.longdoc.engine.model.DType;
import io.longdoc.engine.model.Tensor;
import io.longdoc.engine.model.Weights;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bench's random models: a BF16 one holds the F32 one's weights, rounded to nearest even. */
class RandomModelTest {
    @TempDir
    Path tmp;

    @Test
    void bf16WeightsAreTheF32WeightsRoundedToNearestEven() throws Exception {
        RandomModel.write(tmp.resolve("f32"), 32, 48, 2, 4, 2, 64, 128, DType.F32);
        RandomModel.write(tmp.resolve("bf16"), 32, 48, 2, 4, 2, 64, 128, DType.BF16);
        Weights f32 = Weights.open(tmp.resolve("f32")), bf16 = Weights.open(tmp.resolve("bf16"));
        for (String name : new String[] {"model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight"}) {
            Tensor exact = f32.get(name), rounded = bf16.get(name);
            assertEquals(DType.BF16, rounded.dtype, name);
            float[] a = new float[exact.cols()], b = new float[exact.cols()];
            short[] scratch = new short[exact.cols()];
            for (int r = 0; r < exact.rows(); r++) {
                exact.readRow(r, a, scratch);
                rounded.readRow(r, b, scratch);
                for (int j = 0; j < a.length; j++) {
                    // Round to nearest even by hand, on the bits.
                    int bits = Float.floatToRawIntBits(a[j]);
                    int upper = bits >>> 16, lower = bits & 0xFFFF;
                    if (lower > 0x8000 || lower == 0x8000 && (upper & 1) == 1) {
                        upper++;
                    }
                    assertEquals(Float.intBitsToFloat(upper << 16), b[j], name + " row " + r + " col " + j);
                }
            }
        }
    }
}
