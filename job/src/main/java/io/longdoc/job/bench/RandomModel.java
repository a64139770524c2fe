package io.longdoc.job.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/** Writes a random-weight LLaMA model directory (F32 safetensors) of a given shape, for benchmarks. */
public final class RandomModel {
    private RandomModel() {
    }

    /** llama2.c's stories110M shape: dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000, context 1024, tied head. */
    static Path write110m(Path dir) throws IOException {
        return write(dir, 768, 2048, 12, 12, 12, 32000, 1024);
    }

    public static Path write(Path dir, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int context) throws IOException {
        Files.createDirectories(dir);
        int hd = dim / heads;
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {vocab, dim});
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".";
            shapes.put(p + "input_layernorm.weight", new long[] {dim});
            shapes.put(p + "self_attn.q_proj.weight", new long[] {(long) heads * hd, dim});
            shapes.put(p + "self_attn.k_proj.weight", new long[] {(long) kvHeads * hd, dim});
            shapes.put(p + "self_attn.v_proj.weight", new long[] {(long) kvHeads * hd, dim});
            shapes.put(p + "self_attn.o_proj.weight", new long[] {dim, (long) heads * hd});
            shapes.put(p + "post_attention_layernorm.weight", new long[] {dim});
            shapes.put(p + "mlp.gate_proj.weight", new long[] {hidden, dim});
            shapes.put(p + "mlp.up_proj.weight", new long[] {hidden, dim});
            shapes.put(p + "mlp.down_proj.weight", new long[] {dim, hidden});
        }
        shapes.put("model.norm.weight", new long[] {dim});
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        long offset = 0;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", "F32");
            var s = t.putArray("shape");
            for (long d : e.getValue()) {
                s.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + n * 4);
            offset += n * 4;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - h.length % 8) % 8;
        SplittableRandom random = new SplittableRandom(110);
        try (FileChannel ch = FileChannel.open(dir.resolve("model.safetensors"), StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + h.length + pad).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(h.length + pad).put(h);
            for (int i = 0; i < pad; i++) {
                head.put((byte) ' ');
            }
            head.flip();
            ch.write(head);
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                long[] shape = e.getValue();
                long n = 1;
                for (long d : shape) {
                    n *= d;
                }
                boolean norm = shape.length == 1;
                float scale = norm ? 0f : (float) (Math.sqrt(3.0 / shape[shape.length - 1]));
                for (long i = 0; i < n; i++) {
                    if (!buf.hasRemaining()) {
                        buf.flip();
                        ch.write(buf);
                        buf.clear();
                    }
                    buf.putFloat(norm ? 1f : (float) (random.nextDouble() * 2 - 1) * scale);
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
