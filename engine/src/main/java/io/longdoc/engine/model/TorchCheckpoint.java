package io.longdoc.engine.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads {@code pytorch_model.bin} in torch.save's zip format without executing anything: the
 * zip's central directory gives each stored entry's offset, {@code data.pkl} is interpreted by a
 * restricted pickle machine that knows only what a state dict of tensors needs, and each
 * tensor's storage ({@code data/N}, stored uncompressed) is memory-mapped.
 *
 * <p>Allowed globals: {@code collections.OrderedDict}, {@code torch._utils._rebuild_tensor_v2},
 * {@code torch._utils._rebuild_parameter} and the Float/Half/BFloat16 storage classes. Any other
 * global or opcode is refused with an error naming it.
 */
final class TorchCheckpoint {
    private static final Set<String> ALLOWED_GLOBALS = Set.of(
            "collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
            "torch FloatStorage", "torch HalfStorage", "torch BFloat16Storage");

    private TorchCheckpoint() {
    }

    private record ZipEntry(String name, long dataOffset, long size, int method) {
    }

    private record Global(String module, String name) {
    }

    private record StorageRef(DType dtype, String key, long numel) {
    }

    private record TensorRef(StorageRef storage, long offset, long[] shape, long[] stride) {
    }

    private static final Object MARK = new Object();

    static Map<String, Tensor> open(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            Map<String, ZipEntry> entries = readCentralDirectory(ch, file);
            ZipEntry pkl = null;
            String prefix = null;
            for (ZipEntry e : entries.values()) {
                if (e.name.endsWith("/data.pkl") || e.name.equals("data.pkl")) {
                    pkl = e;
                    prefix = e.name.substring(0, e.name.length() - "data.pkl".length());
                }
            }
            if (pkl == null) {
                throw new ModelFormatException(file + ": no data.pkl inside (not a torch.save zip checkpoint; the legacy pre-1.6 format is not supported)");
            }
            if (pkl.method != 0 || pkl.size > (256L << 20)) {
                throw new ModelFormatException(file + ": data.pkl is compressed or too large");
            }
            // Newer torch.save writes the storages' byte order; every tensor here is read little-endian.
            ZipEntry byteOrder = entries.get(prefix + "byteorder");
            if (byteOrder != null) {
                String order = byteOrder.method == 0 && byteOrder.size <= 16
                        ? StandardCharsets.US_ASCII.decode(read(ch, byteOrder.dataOffset, (int) byteOrder.size).flip()).toString().strip() : "?";
                if (!order.equals("little")) {
                    throw new ModelFormatException(file + ": its storages are stored '" + order + "'-endian (byteorder); only little-endian is read");
                }
            }
            ByteBuffer pickle = ch.map(FileChannel.MapMode.READ_ONLY, pkl.dataOffset, pkl.size);
            byte[] bytes = new byte[(int) pkl.size];
            pickle.get(bytes);
            Object root = new Unpickler(bytes, file).load();
            if (!(root instanceof Map<?, ?> dict)) {
                throw new ModelFormatException(file + ": data.pkl is not a state dict (a mapping of names to tensors)");
            }
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : dict.entrySet()) {
                if (!(e.getKey() instanceof String name)) {
                    throw new ModelFormatException(file + ": state dict key " + e.getKey() + " is not a string");
                }
                if (!(e.getValue() instanceof TensorRef t)) {
                    throw new ModelFormatException(file + ": state dict entry " + name + " is not a tensor");
                }
                tensors.put(name, map(ch, file, entries, prefix, name, t));
            }
            return tensors;
        } catch (IOException e) {
            throw new ModelFormatException("cannot read " + file + ": " + e, e);
        }
    }

    private static Tensor map(FileChannel ch, Path file, Map<String, ZipEntry> entries, String prefix, String name, TensorRef t) throws IOException {
        ZipEntry data = entries.get(prefix + "data/" + t.storage.key);
        if (data == null) {
            throw new ModelFormatException(file + ": tensor " + name + " uses storage " + t.storage.key + ", which is missing");
        }
        if (data.method != 0) {
            throw new ModelFormatException(file + ": storage of tensor " + name + " is compressed; torch.save stores it uncompressed");
        }
        if (t.stride.length != t.shape.length) {
            throw new ModelFormatException(file + ": tensor " + name + " has " + t.shape.length + " dimensions but " + t.stride.length + " strides");
        }
        try {
            return map(ch, file, data, name, t);
        } catch (ArithmeticException e) {
            throw new ModelFormatException(file + ": tensor " + name + " has a size or offset too large to address (" + e.getMessage() + ")");
        }
    }

    private static Tensor map(FileChannel ch, Path file, ZipEntry data, String name, TensorRef t) throws IOException {
        long elements = 1;
        long expectedStride = 1;
        for (int i = t.shape.length - 1; i >= 0; i--) {
            if (t.shape[i] < 0) {
                throw new ModelFormatException(file + ": tensor " + name + " has a negative dimension");
            }
            if (t.shape[i] > 1 && t.stride[i] != expectedStride) {
                throw new ModelFormatException(file + ": tensor " + name + " is not contiguous (stride " + java.util.Arrays.toString(t.stride) + ")");
            }
            expectedStride *= t.shape[i];
            elements = Math.multiplyExact(elements, t.shape[i]);
        }
        int size = t.storage.dtype.bytes;
        // torch.save writes a storage as exactly its elements: any other size means the declared
        // type (or count) does not match the bytes, e.g. a HalfStorage over F32 data.
        long storageBytes = Math.multiplyExact(t.storage.numel, size);
        if (storageBytes != data.size) {
            throw new ModelFormatException(file + ": storage " + t.storage.key + " of tensor " + name + " holds " + data.size + " bytes, but "
                    + t.storage.numel + " " + t.storage.dtype + " elements take " + storageBytes
                    + (storageBytes > data.size ? " (truncated file?)" : " (its declared type does not match its data)"));
        }
        long begin = Math.multiplyExact(t.offset, size), length = Math.multiplyExact(elements, size);
        if (t.offset < 0 || Math.addExact(begin, length) > storageBytes) {
            throw new ModelFormatException(file + ": tensor " + name + " (offset " + t.offset + ", " + elements + " elements) runs past the end of its storage");
        }
        if (length > Integer.MAX_VALUE) {
            throw new ModelFormatException(file + ": tensor " + name + " is larger than 2 GiB");
        }
        ByteBuffer buf = length == 0 ? ByteBuffer.allocate(0) : ch.map(FileChannel.MapMode.READ_ONLY, data.dataOffset + begin, length);
        return new Tensor(name, file.toString(), t.storage.dtype, t.shape, buf);
    }

    // ------------------------------------------------------------------ zip (with ZIP64)

    private static Map<String, ZipEntry> readCentralDirectory(FileChannel ch, Path file) throws IOException {
        long size = ch.size();
        int tail = (int) Math.min(size, 65_557);
        ByteBuffer end = read(ch, size - tail, tail);
        int eocd = -1;
        for (int i = tail - 22; i >= 0; i--) {
            if (end.getInt(i) == 0x06054b50) {
                eocd = i;
                break;
            }
        }
        if (eocd < 0) {
            throw new ModelFormatException(file + ": not a zip archive (no end of central directory): truncated or not a torch.save checkpoint");
        }
        long entries = end.getShort(eocd + 10) & 0xFFFF;
        long cdSize = end.getInt(eocd + 12) & 0xFFFFFFFFL;
        long cdOffset = end.getInt(eocd + 16) & 0xFFFFFFFFL;
        if (eocd >= 20 && end.getInt(eocd - 20) == 0x07064b50) {
            long zip64Eocd = end.getLong(eocd - 20 + 8);
            if (zip64Eocd < 0 || zip64Eocd + 56 > size) {
                throw new ModelFormatException(file + ": corrupt ZIP64 locator");
            }
            ByteBuffer z = read(ch, zip64Eocd, 56);
            if (z.getInt(0) != 0x06064b50) {
                throw new ModelFormatException(file + ": corrupt ZIP64 end of central directory");
            }
            entries = z.getLong(32);
            cdSize = z.getLong(40);
            cdOffset = z.getLong(48);
        }
        if (cdOffset < 0 || cdSize < 0 || cdOffset + cdSize > size || cdSize > (64L << 20) || entries > 1_000_000) {
            throw new ModelFormatException(file + ": central directory runs past the end of the file (truncated?)");
        }
        ByteBuffer cd = read(ch, cdOffset, (int) cdSize);
        Map<String, ZipEntry> out = new HashMap<>();
        int p = 0;
        for (long n = 0; n < entries; n++) {
            if (p + 46 > cd.limit() || cd.getInt(p) != 0x02014b50) {
                throw new ModelFormatException(file + ": corrupt central directory entry #" + n);
            }
            int method = cd.getShort(p + 10) & 0xFFFF;
            long compSize = cd.getInt(p + 20) & 0xFFFFFFFFL;
            long uncompSize = cd.getInt(p + 24) & 0xFFFFFFFFL;
            int nameLen = cd.getShort(p + 28) & 0xFFFF, extraLen = cd.getShort(p + 30) & 0xFFFF, commentLen = cd.getShort(p + 32) & 0xFFFF;
            long localOffset = cd.getInt(p + 42) & 0xFFFFFFFFL;
            if (p + 46 + nameLen + extraLen + commentLen > cd.limit()) {
                throw new ModelFormatException(file + ": corrupt central directory entry #" + n);
            }
            byte[] nameBytes = new byte[nameLen];
            cd.get(p + 46, nameBytes);
            String name = new String(nameBytes, StandardCharsets.UTF_8);
            // ZIP64 extra field: the 0xFFFFFFFF fields, in order, are 8-byte values.
            int x = p + 46 + nameLen, xEnd = x + extraLen;
            while (x + 4 <= xEnd) {
                int id = cd.getShort(x) & 0xFFFF, len = cd.getShort(x + 2) & 0xFFFF;
                if (id == 1) {
                    int q = x + 4;
                    if (uncompSize == 0xFFFFFFFFL && q + 8 <= xEnd) {
                        uncompSize = cd.getLong(q);
                        q += 8;
                    }
                    if (compSize == 0xFFFFFFFFL && q + 8 <= xEnd) {
                        compSize = cd.getLong(q);
                        q += 8;
                    }
                    if (localOffset == 0xFFFFFFFFL && q + 8 <= xEnd) {
                        localOffset = cd.getLong(q);
                    }
                }
                x += 4 + len;
            }
            if (localOffset < 0 || localOffset + 30 > size) {
                throw new ModelFormatException(file + ": entry " + name + " starts past the end of the file");
            }
            ByteBuffer local = read(ch, localOffset, 30);
            if (local.getInt(0) != 0x04034b50) {
                throw new ModelFormatException(file + ": entry " + name + " has a corrupt local header");
            }
            long dataOffset = localOffset + 30 + (local.getShort(26) & 0xFFFF) + (local.getShort(28) & 0xFFFF);
            if (dataOffset + compSize > size) {
                throw new ModelFormatException(file + ": entry " + name + " runs past the end of the file (truncated?)");
            }
            out.put(name, new ZipEntry(name, dataOffset, compSize, method));
            p += 46 + nameLen + extraLen + commentLen;
        }
        return out;
    }

    private static ByteBuffer read(FileChannel ch, long pos, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (ch.read(b, pos + b.position()) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
        return b;
    }

    // ------------------------------------------------------------------ restricted pickle

    /** The pickle opcodes torch.save emits for a state dict; anything else is refused. */
    private static final class Unpickler {
        private final byte[] b;
        private final Path file;
        private int pos;
        private final List<Object> stack = new ArrayList<>();
        private final Map<Integer, Object> memo = new HashMap<>();

        Unpickler(byte[] b, Path file) {
            this.b = b;
            this.file = file;
        }

        Object load() {
            while (true) {
                int op = u8();
                switch (op) {
                    case 0x80 -> u8();                                  // PROTO
                    case 0x95 -> skip(8);                               // FRAME
                    case '}' -> push(new LinkedHashMap<>());            // EMPTY_DICT
                    case ']' -> push(new ArrayList<>());                // EMPTY_LIST
                    case ')' -> push(List.of());                        // EMPTY_TUPLE
                    case '(' -> push(MARK);                             // MARK
                    case 'N' -> push(null);                             // NONE
                    case 0x88 -> push(Boolean.TRUE);                    // NEWTRUE
                    case 0x89 -> push(Boolean.FALSE);                   // NEWFALSE
                    case 'K' -> push((long) u8());                      // BININT1
                    case 'M' -> push((long) (u8() | u8() << 8));        // BININT2
                    case 'J' -> push((long) i32());                     // BININT
                    case 0x8a -> push(long1());                         // LONG1
                    case 'G' -> push(Double.longBitsToDouble(be64()));  // BINFLOAT
                    case 'X' -> push(str(i32()));                       // BINUNICODE
                    case 0x8c -> push(str(u8()));                       // SHORT_BINUNICODE
                    case 'U' -> push(str(u8()));                        // SHORT_BINSTRING
                    case 'q' -> memo.put(u8(), peek());                 // BINPUT
                    case 'r' -> memo.put(i32(), peek());                // LONG_BINPUT
                    case 0x94 -> memo.put(memo.size(), peek());         // MEMOIZE
                    case 'h' -> push(memoGet(u8()));                    // BINGET
                    case 'j' -> push(memoGet(i32()));                   // LONG_BINGET
                    case 'c' -> push(global(line(), line()));           // GLOBAL
                    case 0x93 -> {                                      // STACK_GLOBAL
                        Object name = pop(), module = pop();
                        push(global(String.valueOf(module), String.valueOf(name)));
                    }
                    case 't' -> push(List.copyOf(popToMark()));         // TUPLE
                    case 0x85 -> push(List.of(pop()));                  // TUPLE1
                    case 0x86 -> {                                      // TUPLE2
                        Object y = pop(), x = pop();
                        push(java.util.Arrays.asList(x, y));
                    }
                    case 0x87 -> {                                      // TUPLE3
                        Object z = pop(), y = pop(), x = pop();
                        push(java.util.Arrays.asList(x, y, z));
                    }
                    case 'a' -> {                                       // APPEND
                        Object v = pop();
                        asList(peek()).add(v);
                    }
                    case 'e' -> {                                       // APPENDS
                        List<Object> items = popToMark();
                        asList(peek()).addAll(items);
                    }
                    case 's' -> {                                       // SETITEM
                        Object v = pop(), k = pop();
                        asMap(peek()).put(k, v);
                    }
                    case 'u' -> {                                       // SETITEMS
                        List<Object> items = popToMark();
                        Map<Object, Object> m = asMap(peek());
                        for (int i = 0; i + 1 < items.size(); i += 2) {
                            m.put(items.get(i), items.get(i + 1));
                        }
                    }
                    case 'Q' -> push(persistent(pop()));                // BINPERSID
                    case 'R' -> {                                       // REDUCE
                        Object args = pop(), fn = pop();
                        push(reduce(fn, args));
                    }
                    case 'b' -> pop();                                  // BUILD: state of an OrderedDict (its _metadata); dropped
                    case '.' -> {                                       // STOP
                        return pop();
                    }
                    default -> throw refuse(String.format("pickle opcode 0x%02x", op));
                }
            }
        }

        private Object global(String module, String name) {
            if (!ALLOWED_GLOBALS.contains(module + " " + name)) {
                throw refuse("global " + module + "." + name);
            }
            return new Global(module, name);
        }

        private Object persistent(Object pid) {
            if (!(pid instanceof List<?> t) || t.size() < 5 || !"storage".equals(t.get(0)) || !(t.get(1) instanceof Global g)) {
                throw refuse("persistent id " + pid);
            }
            DType dtype = switch (g.name) {
                case "FloatStorage" -> DType.F32;
                case "HalfStorage" -> DType.F16;
                case "BFloat16Storage" -> DType.BF16;
                default -> throw refuse("storage type " + g.name);
            };
            String key = String.valueOf(t.get(2));
            if (!key.matches("[0-9A-Za-z_]+")) {
                throw refuse("storage key " + key);
            }
            return new StorageRef(dtype, key, asLong(t.get(4)));
        }

        private Object reduce(Object fn, Object args) {
            if (!(fn instanceof Global g) || !(args instanceof List<?> a)) {
                throw refuse("call of " + fn);
            }
            switch (g.module + " " + g.name) {
                case "collections OrderedDict":
                    if (!a.isEmpty()) {
                        throw refuse("OrderedDict with arguments");
                    }
                    return new LinkedHashMap<>();
                case "torch._utils _rebuild_tensor_v2":
                    if (a.size() < 4 || !(a.get(0) instanceof StorageRef s)) {
                        throw refuse("_rebuild_tensor_v2 arguments " + a);
                    }
                    return new TensorRef(s, asLong(a.get(1)), longs(a.get(2)), longs(a.get(3)));
                case "torch._utils _rebuild_parameter":
                    if (a.isEmpty() || !(a.get(0) instanceof TensorRef t)) {
                        throw refuse("_rebuild_parameter arguments");
                    }
                    return t;
                default:
                    throw refuse("call of " + g.module + "." + g.name);
            }
        }

        private long[] longs(Object o) {
            if (!(o instanceof List<?> l)) {
                throw refuse("tensor size/stride " + o);
            }
            long[] out = new long[l.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = asLong(l.get(i));
            }
            return out;
        }

        private long asLong(Object o) {
            if (!(o instanceof Long v)) {
                throw refuse("integer expected, got " + o);
            }
            return v;
        }

        @SuppressWarnings("unchecked")
        private List<Object> asList(Object o) {
            if (!(o instanceof ArrayList<?>)) {
                throw refuse("append to a non-list");
            }
            return (List<Object>) o;
        }

        @SuppressWarnings("unchecked")
        private Map<Object, Object> asMap(Object o) {
            if (!(o instanceof Map<?, ?>)) {
                throw refuse("setitem on a non-dict");
            }
            return (Map<Object, Object>) o;
        }

        private List<Object> popToMark() {
            int m = stack.lastIndexOf(MARK);
            if (m < 0) {
                throw refuse("missing MARK");
            }
            List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
            stack.subList(m, stack.size()).clear();
            return items;
        }

        private Object memoGet(int key) {
            if (!memo.containsKey(key)) {
                throw refuse("memo key " + key);
            }
            return memo.get(key);
        }

        private void push(Object o) {
            if (stack.size() > 1_000_000) {
                throw refuse("stack overflow");
            }
            stack.add(o);
        }

        private Object pop() {
            if (stack.isEmpty()) {
                throw refuse("stack underflow");
            }
            return stack.remove(stack.size() - 1);
        }

        private Object peek() {
            if (stack.isEmpty()) {
                throw refuse("stack underflow");
            }
            return stack.get(stack.size() - 1);
        }

        private int u8() {
            if (pos >= b.length) {
                throw refuse("truncated pickle");
            }
            return b[pos++] & 0xFF;
        }

        private int i32() {
            return u8() | u8() << 8 | u8() << 16 | u8() << 24;
        }

        private long be64() {
            long v = 0;
            for (int i = 0; i < 8; i++) {
                v = v << 8 | u8();
            }
            return v;
        }

        private long long1() {
            int n = u8();
            if (n > 8) {
                throw refuse("LONG1 of " + n + " bytes");
            }
            long v = 0;
            for (int i = 0; i < n; i++) {
                v |= (long) u8() << (8 * i);
            }
            if (n > 0 && n < 8 && (v >> (8 * n - 1) & 1) != 0) {
                v -= 1L << (8 * n);
            }
            return v;
        }

        private void skip(int n) {
            for (int i = 0; i < n; i++) {
                u8();
            }
        }

        private String str(int len) {
            if (len < 0 || len > b.length - pos) {
                throw refuse("string runs past the end");
            }
            String s = new String(b, pos, len, StandardCharsets.UTF_8);
            pos += len;
            return s;
        }

        private String line() {
            int start = pos;
            while (pos < b.length && b[pos] != '\n') {
                pos++;
            }
            if (pos >= b.length) {
                throw refuse("truncated GLOBAL");
            }
            return new String(b, start, pos++ - start, StandardCharsets.UTF_8);
        }

        private ModelFormatException refuse(String what) {
            return new ModelFormatException(file + ": data.pkl: refused " + what + " at byte " + pos
                    + " (only a state dict of tensors is accepted; nothing in the file is executed)");
        }
    }
}
