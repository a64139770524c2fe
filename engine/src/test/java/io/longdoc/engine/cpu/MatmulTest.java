package io.longdoc.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.longdoc.engine.model.DType;
import io.longdoc.engine.model.LlamaWeights;
import io.longdoc.engine.model.ModelConfig;
import io.longdoc.engine.model.SafeTensorsWriter;
import io.longdoc.engine.model.Tensor;
import io.longdoc.engine.model.Weights;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CPU matrix product on every path it takes against float64 sums: weights read in place
 * (decode), whole and half panels of tokens (last ones part empty), F32 and BF16 rows read in place by the
 * panel kernel or copied, fewer tokens than a half panel, rows longer than the usual block,
 * products small enough to stay on one thread and large enough to be shared, in F32, BF16 and F16.
 */
class MatmulTest {
    @TempDir
    Path tmp;

    @Test
    void everyPathAndTypeEqualsFloat64Sums() throws Exception {
        Path dir = Shared.require("models/index-tiny-random");
        ModelConfig c = ModelConfig.load(dir);
        Random random = new Random(17);
        // (rows, cols): tiny; rows shorter than a SIMD pass; rows longer than 1 365, where a group of
        // twelve rows overflows the usual block; and whole runs of pairs (cols a multiple of 32),
        // where a batch's 16-bit rows are widened in pair order.
        int[][] shapes = {{7, 40}, {29, 100}, {13, 3000}, {19, 96}, {13, 3008}};
        for (VectorMath math : new VectorMath[] {VectorMath.get(), VectorMath.simdCopyingPanelRows(), VectorMath.scalar()}) {
            try (CpuBackend backend = new CpuBackend(new LlamaWeights(c, Weights.open(dir)), 4, 16, 2, math)) {
                for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                    for (int[] shape : shapes) {
                        Tensor w = writeTensor(dtype, shape[0], shape[1], random);
                        float[][] rowsOf = new float[shape[0]][shape[1]];
                        for (int r = 0; r < shape[0]; r++) {
                            w.readRow(r, rowsOf[r], new short[shape[1]]);
                        }
                        for (int tokens : new int[] {1, 2, 3, 5, 8, 9, 16, 21, 27, 40, 56}) {
                            float[][] in = new float[tokens][shape[1]];
                            for (float[] row : in) {
                                for (int j = 0; j < row.length; j++) {
                                    row[j] = random.nextFloat() * 2 - 1;
                                }
                            }
                            float[][] got = backend.matmul(in, w);
                            for (int t = 0; t < tokens; t++) {
                                for (int r = 0; r < shape[0]; r++) {
                                    double want = 0;
                                    for (int j = 0; j < shape[1]; j++) {
                                        want += (double) rowsOf[r][j] * in[t][j];
                                    }
                                    assertEquals(want, got[t][r], 1e-5 * shape[1], math.name() + " " + dtype + " " + shape[0] + "×" + shape[1]
                                            + ", " + tokens + " tokens: token " + t + " row " + r);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void severalWeightsAsOneOperationEqualEachAlone() throws Exception {
        Path dir = Shared.require("models/index-tiny-random");
        ModelConfig c = ModelConfig.load(dir);
        Random random = new Random(5);
        try (CpuBackend backend = new CpuBackend(new LlamaWeights(c, Weights.open(dir)), 4, 16, 2, VectorMath.get())) {
            // q/k/v-like shapes of one type, then a checkpoint that mixes types (one operation per weight).
            Tensor[][] sets = {
                {writeTensor(DType.F32, 96, 64, random), writeTensor(DType.F32, 32, 64, random), writeTensor(DType.F32, 32, 64, random)},
                {writeTensor(DType.BF16, 40, 64, random), writeTensor(DType.F32, 24, 64, random)},
            };
            for (Tensor[] weights : sets) {
                for (int tokens : new int[] {1, 5, 16, 19}) {
                    float[][] in = new float[tokens][64];
                    for (float[] row : in) {
                        for (int j = 0; j < row.length; j++) {
                            row[j] = random.nextFloat() * 2 - 1;
                        }
                    }
                    float[][][] together = backend.matmuls(in, weights);
                    for (int i = 0; i < weights.length; i++) {
                        float[][] alone = backend.matmul(in, weights[i]);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < weights[i].rows(); r++) {
                                assertEquals(alone[t][r], together[i][t][r], 1e-6f, weights[i].dtype + " weight " + i + ", " + tokens + " tokens: token " + t + " row " + r);
                            }
                        }
                    }
                }
            }
        }
    }

    private int files;

    /** A (rows, cols) tensor of random finite values, written to a safetensors file and mapped back. */
    private Tensor writeTensor(DType dtype, int rows, int cols, Random random) throws Exception {
        Path file = tmp.resolve("m" + files++);
        Files.createDirectories(file);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("w", new long[] {rows, cols});
        ByteBuffer data = ByteBuffer.allocate(rows * cols * dtype.bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) {
            switch (dtype) {
                case F32 -> data.putFloat(random.nextFloat() * 2 - 1);
                case BF16 -> data.putShort((short) (Float.floatToRawIntBits(random.nextFloat() * 2 - 1) >>> 16));
                // Sign, an exponent between 2^-5 and 2^5, any mantissa: finite normal halves.
                case F16 -> data.putShort((short) ((random.nextInt(2) << 15) | ((10 + random.nextInt(11)) << 10) | random.nextInt(1024)));
            }
        }
        data.flip();
        try (FileChannel ch = SafeTensorsWriter.create(file.resolve("model.safetensors"), shapes, dtype)) {
            while (data.hasRemaining()) {
                ch.write(data);
            }
        }
        return Weights.open(file).get("w");
    }
}
