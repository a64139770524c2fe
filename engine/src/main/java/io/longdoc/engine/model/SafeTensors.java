package io.longdoc.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a {@code .safetensors} file: an 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and byte range, then the data. Every number in the header is checked
 * against the file before anything is mapped; each tensor is memory-mapped on its own.
 */
public final class SafeTensors {
    private static final long MAX_HEADER = 100L << 20;

    private SafeTensors() {
    }

    public static Map<String, Tensor> open(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new ModelFormatException(file + ": " + size + " bytes is too short for a safetensors file");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0, file);
            long headerLen = lenBuf.getLong(0);
            if (headerLen <= 0 || headerLen > MAX_HEADER || headerLen > size - 8) {
                throw new ModelFormatException(file + ": bad header length " + headerLen + " (file is " + size + " bytes)");
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(ch, headerBuf, 8, file);
            JsonNode header;
            try {
                header = new ObjectMapper().readTree(headerBuf.array());
            } catch (IOException e) {
                throw new ModelFormatException(file + ": header is not valid JSON: " + e.getMessage(), e);
            }
            if (header == null || !header.isObject()) {
                throw new ModelFormatException(file + ": header is not a JSON object");
            }
            long dataStart = 8 + headerLen;
            long dataSize = size - dataStart;
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            // Each tensor's bytes, by where they begin: two tensors may not share bytes (as the
            // safetensors format requires), so a damaged header cannot alias one weight onto another.
            java.util.TreeMap<Long, long[]> ranges = new java.util.TreeMap<>();
            Map<Long, String> rangeNames = new java.util.HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String name = e.getKey();
                if (name.equals("__metadata__")) {
                    continue;
                }
                JsonNode t = e.getValue();
                DType dtype = DType.fromSafetensors(t.path("dtype").asText(""));
                if (dtype == null) {
                    throw new ModelFormatException(file + ": tensor " + name + " has dtype '" + t.path("dtype").asText("") + "' (supported: F32, F16, BF16)");
                }
                List<Long> shape = new ArrayList<>();
                long elements = 1;
                for (JsonNode d : t.path("shape")) {
                    if (!d.canConvertToLong() || d.asLong() < 0) {
                        throw new ModelFormatException(file + ": tensor " + name + " has a bad shape " + t.path("shape"));
                    }
                    shape.add(d.asLong());
                    elements = Math.multiplyExact(elements, d.asLong());
                }
                JsonNode off = t.path("data_offsets");
                if (off.size() != 2) {
                    throw new ModelFormatException(file + ": tensor " + name + " has no data_offsets");
                }
                if (!off.get(0).isIntegralNumber() || !off.get(1).isIntegralNumber()) {
                    throw new ModelFormatException(file + ": tensor " + name + " has data_offsets " + off + " that are not whole numbers");
                }
                long begin = off.get(0).asLong(-1), end = off.get(1).asLong(-1);
                if (begin < 0 || end < begin || end > dataSize) {
                    throw new ModelFormatException(file + ": tensor " + name + " data_offsets [" + begin + ", " + end
                            + "] run past the end of the data (" + dataSize + " bytes): truncated file?");
                }
                if (end - begin != elements * dtype.bytes) {
                    throw new ModelFormatException(file + ": tensor " + name + " shape " + shape + " × " + dtype
                            + " needs " + elements * dtype.bytes + " bytes, data_offsets give " + (end - begin));
                }
                if (end - begin > Integer.MAX_VALUE) {
                    throw new ModelFormatException(file + ": tensor " + name + " is larger than 2 GiB");
                }
                if (end > begin) {
                    if (ranges.containsKey(begin)) {
                        throw new ModelFormatException(file + ": tensors " + rangeNames.get(begin) + " and " + name + " have overlapping data_offsets");
                    }
                    ranges.put(begin, new long[] {end});
                    rangeNames.put(begin, name);
                }
                ByteBuffer mapped = end == begin ? ByteBuffer.allocate(0) : ch.map(FileChannel.MapMode.READ_ONLY, dataStart + begin, end - begin);
                tensors.put(name, new Tensor(name, file.toString(), dtype, shape.stream().mapToLong(Long::longValue).toArray(), mapped));
            }
            long previousEnd = 0;
            String previous = null;
            for (Map.Entry<Long, long[]> r : ranges.entrySet()) {
                if (r.getKey() < previousEnd) {
                    throw new ModelFormatException(file + ": tensors " + previous + " and " + rangeNames.get(r.getKey())
                            + " have overlapping data_offsets");
                }
                previousEnd = r.getValue()[0];
                previous = rangeNames.get(r.getKey());
            }
            return tensors;
        } catch (IOException e) {
            throw new ModelFormatException("cannot read " + file + ": " + e, e);
        } catch (ArithmeticException e) {
            throw new ModelFormatException(file + ": a tensor shape overflows", e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position, Path file) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, position + buf.position());
            if (n < 0) {
                throw new ModelFormatException(file + ": truncated header");
            }
        }
    }
}
