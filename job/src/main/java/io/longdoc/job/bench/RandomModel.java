package io.longdoc.job.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.longdoc.engine.model.DType;
import io.longdoc.engine.model.SafeTensorsWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

/** Writes a random-weight LLaMA model directory (F32 or BF16 safetensors) of a given shape, for benchmarks. */
public final class RandomModel {
    private RandomModel() {
    }

    /** stories110M's context length. */
    static final int CONTEXT_110M = 1024;

    /** llama2.c's stories110M shape: dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000, tied head; context 1024 unless told. */
    static Path write110m(Path dir, DType dtype, int context) throws IOException {
        return write(dir, 768, 2048, 12, 12, 12, 32000, context, dtype);
    }

    public static Path write(Path dir, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int context) throws IOException {
        return write(dir, dim, hidden, layers, heads, kvHeads, vocab, context, DType.F32);
    }

    public static Path write(Path dir, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int context, DType dtype) throws IOException {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException("random models are written as F32 or BF16, not " + dtype);
        }
        Files.createDirectories(dir);
        Map<String, long[]> shapes = SafeTensorsWriter.llamaShapes(dim, hidden, layers, heads, kvHeads, vocab, true);
        ObjectMapper json = new ObjectMapper();
        SplittableRandom random = new SplittableRandom(110);
        try (FileChannel ch = SafeTensorsWriter.create(dir.resolve("model.safetensors"), shapes, dtype)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                long[] shape = e.getValue();
                long n = SafeTensorsWriter.elements(shape);
                boolean norm = shape.length == 1;
                float scale = norm ? 0f : (float) (Math.sqrt(3.0 / shape[shape.length - 1]));
                for (long i = 0; i < n; i++) {
                    if (!buf.hasRemaining()) {
                        buf.flip();
                        ch.write(buf);
                        buf.clear();
                    }
                    float value = norm ? 1f : (float) (random.nextDouble() * 2 - 1) * scale;
                    if (dtype == DType.F32) {
                        buf.putFloat(value);
                    } else {
                        int bits = Float.floatToRawIntBits(value);
                        buf.putShort((short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16));  // round to nearest even
                    }
                }
            }
            buf.flip();
            ch.write(buf);
        }
        ObjectNode config = json.createObjectNode();
        config.putArray("architectures").add("LlamaForCausalLM");
        config.put("hidden_size", dim).put("intermediate_size", hidden).put("num_hidden_layers", layers)
                .put("num_attention_heads", heads).put("num_key_value_heads", kvHeads).put("vocab_size", vocab)
                .put("max_position_embeddings", context).put("rms_norm_eps", 1e-5).put("tie_word_embeddings", true)
                .put("bos_token_id", 1).put("eos_token_id", 2);
        Files.writeString(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(config));
        return dir;
    }
}
