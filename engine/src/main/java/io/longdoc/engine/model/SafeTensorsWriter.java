package io.longdoc.engine.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes model.safetensors files of generated weights (benchmarks, the demo model): the LLaMA tensor layout and the file header. */
public final class SafeTensorsWriter {
    private SafeTensorsWriter() {
    }

    /** Tensor names and shapes of a LLaMA-family model, in file order; lm_head.weight only when the head is not tied. */
    public static Map<String, long[]> llamaShapes(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, boolean tiedHead) {
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
        if (!tiedHead) {
            shapes.put("lm_head.weight", new long[] {vocab, dim});
        }
        return shapes;
    }

    public static long elements(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /**
     * Creates {@code file} and writes its header (8-byte length, JSON, space padding to 8 bytes)
     * for these tensors, all of {@code dtype}, stored back to back in map order; the caller then
     * writes the data, {@link #dataBytes} in all, to the returned channel.
     */
    public static FileChannel create(Path file, Map<String, long[]> shapes, DType dtype) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        long offset = 0;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            long bytes = elements(e.getValue()) * dtype.bytes;
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", dtype.name());
            ArrayNode shape = t.putArray("shape");
            for (long d : e.getValue()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - h.length % 8) % 8;
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        ByteBuffer head = ByteBuffer.allocate(8 + h.length + pad).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(h.length + pad).put(h);
        for (int i = 0; i < pad; i++) {
            head.put((byte) ' ');
        }
        head.flip();
        while (head.hasRemaining()) {
            ch.write(head);
        }
        return ch;
    }

    /** Bytes of tensor data {@link #create} announced. */
    public static long dataBytes(Map<String, long[]> shapes, DType dtype) {
        long total = 0;
        for (long[] shape : shapes.values()) {
            total += elements(shape) * dtype.bytes;
        }
        return total;
    }
}
