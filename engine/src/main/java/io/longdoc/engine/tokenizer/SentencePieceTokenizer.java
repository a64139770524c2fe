package io.longdoc.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * SentencePiece BPE encoding and decoding in pure Java, with the same ids as the sentencepiece
 * library: normalization (precompiled map, extra-whitespace removal, dummy prefix, whitespace
 * escaping), user-defined pieces, score-ordered BPE merges, and byte fallback.
 *
 * <p>Speed comes from one exact shortcut. When no piece has a "▁" after a non-"▁" character
 * (true of LLaMA, Mistral and Index vocabularies; checked at load), no merge can cross the
 * start of a word, so BPE runs per word and each word's ids are cached. Otherwise BPE runs
 * over the whole text, as sentencepiece does.
 *
 * <p>Thread-safe: the model is immutable and each thread gets its own scratch buffers.
 */
public final class SentencePieceTokenizer {
    private static final byte[] SPACE_SYMBOL = "\u2581".getBytes(StandardCharsets.UTF_8); // E2 96 81
    private static final byte[] REPLACEMENT = {(byte) 0xEF, (byte) 0xBF, (byte) 0xBD};
    private static final byte[] ONE_SPACE = {' '};
    private static final int CACHEABLE_WORD_BYTES = 48;

    private final SentencePieceModel model;
    private final PieceTable mergeable;   // NORMAL, USER_DEFINED, UNUSED: what BPE may produce
    private final PieceTable reserved;    // CONTROL, UNKNOWN, BYTE
    private final byte[][] userDefined;   // user-defined pieces, matched whole before anything else
    private final boolean[] userDefinedFirstByte = new boolean[256];
    private final boolean hasUnused;
    private final int[] byteIds = new int[256];
    private final int[] pieceOfByte;      // id -> byte value for BYTE pieces, else -1
    private final CharsMap charsMap;
    private final boolean wordsAreIndependent;
    private final ThreadLocal<Work> work = ThreadLocal.withInitial(Work::new);

    public SentencePieceTokenizer(SentencePieceModel model) {
        this.model = model;
        int n = model.size();
        boolean[] isMergeable = new boolean[n];
        boolean[] isReserved = new boolean[n];
        int userDefinedCount = 0;
        boolean unused = false;
        for (int i = 0; i < n; i++) {
            int t = model.types[i];
            isMergeable[i] = t == SentencePieceModel.NORMAL || t == SentencePieceModel.USER_DEFINED || t == SentencePieceModel.UNUSED;
            isReserved[i] = !isMergeable[i];
            if (t == SentencePieceModel.USER_DEFINED) {
                userDefinedCount++;
            }
            unused |= t == SentencePieceModel.UNUSED;
        }
        this.hasUnused = unused;
        this.mergeable = new PieceTable(model.pieces, isMergeable);
        this.reserved = new PieceTable(model.pieces, isReserved);
        this.userDefined = new byte[userDefinedCount][];
        int u = 0;
        for (int i = 0; i < n; i++) {
            if (model.types[i] == SentencePieceModel.USER_DEFINED) {
                userDefined[u] = model.pieces[i].getBytes(StandardCharsets.UTF_8);
                userDefinedFirstByte[userDefined[u][0] & 0xFF] = true;
                u++;
            }
        }
        this.pieceOfByte = new int[n];
        Arrays.fill(pieceOfByte, -1);
        Arrays.fill(byteIds, -1);
        for (int i = 0; i < n; i++) {
            if (model.types[i] == SentencePieceModel.BYTE) {
                int b = parseBytePiece(model.pieces[i]);
                if (b < 0) {
                    throw new TokenizerFormatException("BYTE piece #" + i + " '" + model.pieces[i] + "' is not of the form <0xXX>");
                }
                byteIds[b] = i;
                pieceOfByte[i] = b;
            }
        }
        if (model.byteFallback) {
            for (int b = 0; b < 256; b++) {
                if (byteIds[b] < 0) {
                    throw new TokenizerFormatException(String.format("byte_fallback is set but piece <0x%02X> is missing", b));
                }
            }
        }
        this.charsMap = model.precompiledCharsmap.length > 0 ? new CharsMap(model.precompiledCharsmap) : null;
        this.wordsAreIndependent = !model.treatWhitespaceAsSuffix && noPieceHasInnerSpace(model, isMergeable);
    }

    public static SentencePieceTokenizer load(Path tokenizerModel) {
        return new SentencePieceTokenizer(SentencePieceModel.load(tokenizerModel));
    }

    public SentencePieceModel model() {
        return model;
    }

    public int vocabSize() {
        return model.size();
    }

    /** Ids of {@code text}, exactly as sentencepiece's {@code encode(text)} (no BOS/EOS). */
    public int[] encode(String text) {
        Work w = work.get();
        w.ids.clear();
        encodeInto(text, w.ids);
        return w.ids.toArray();
    }

    /** Number of ids {@code encode(text)} would return, without building the array. */
    public int count(String text) {
        Work w = work.get();
        w.ids.clear();
        encodeInto(text, w.ids);
        return w.ids.size;
    }

    /** Appends the ids of {@code text} to {@code out}. */
    public void encodeInto(String text, IntList out) {
        encodeInto(text, out, model.addDummyPrefix);
    }

    /**
     * Appends the ids of {@code text}, with or without the dummy-prefix space: text that continues
     * a prompt (after a document) is encoded without it, as it is not the start of a sentence.
     */
    public void encodeInto(String text, IntList out, boolean dummyPrefix) {
        Work w = work.get();
        int len = Utf8.encode(text, w);
        byte[] input = w.input;
        int normLen = normalize(input, len, w, dummyPrefix);
        if (normLen == 0) {
            return;
        }
        w.outStart = out.size;
        if (wordsAreIndependent) {
            encodeWords(w, normLen, out);
        } else {
            w.ensureSymbols(normLen);
            int count = splitSymbols(w.norm, 0, normLen, w);
            w.pieceIds.clear();
            bpe(w, count, w.pieceIds);
            append(w, w.pieceIds.data, w.pieceIds.size, out);
        }
    }

    /**
     * Appends one word's ids. Without byte fallback, a run of unknown pieces becomes a single
     * unknown id, as sentencepiece merges them, also across word boundaries.
     */
    private void append(Work w, int[] ids, int n, IntList out) {
        for (int i = 0; i < n; i++) {
            int id = ids[i];
            if (id == model.unkId && out.size > w.outStart && out.data[out.size - 1] == model.unkId) {
                continue;
            }
            out.add(id);
        }
    }

    // ---------------------------------------------------------------- normalization

    /**
     * sentencepiece's Normalizer::Normalize: writes the normalized UTF-8 bytes of
     * {@code in[0, len)} into {@code w.norm} and returns their length.
     */
    private int normalize(byte[] in, int len, Work w, boolean addDummyPrefix) {
        w.ensureNorm(len * 3 + 8);
        int pos = 0;
        if (model.removeExtraWhitespaces) {
            while (pos < len) {
                normalizePrefix(in, pos, len, w);
                if (!(w.prefixLen == 1 && w.prefixSrc[w.prefixOff] == ' ')) {
                    break;
                }
                pos += w.consumed;
            }
        }
        if (pos == len) {
            return 0;
        }
        int n = 0;
        if (!model.treatWhitespaceAsSuffix && addDummyPrefix) {
            n = appendSpace(w, n);
        }
        boolean prevSpace = model.removeExtraWhitespaces;
        while (pos < len) {
            normalizePrefix(in, pos, len, w);
            byte[] src = w.prefixSrc;
            int s = w.prefixOff, e = s + w.prefixLen;
            while (prevSpace && s < e && src[s] == ' ') {
                s++;
            }
            if (s < e) {
                w.ensureNorm(n + (e - s) * 3 + 8);
                byte[] norm = w.norm;
                for (int i = s; i < e; i++) {
                    byte b = src[i];
                    if (b == ' ' && model.escapeWhitespaces) {
                        norm[n++] = SPACE_SYMBOL[0];
                        norm[n++] = SPACE_SYMBOL[1];
                        norm[n++] = SPACE_SYMBOL[2];
                    } else {
                        norm[n++] = b;
                    }
                }
                prevSpace = src[e - 1] == ' ';
            }
            pos += w.consumed;
            if (!model.removeExtraWhitespaces) {
                prevSpace = false;
            }
        }
        if (model.removeExtraWhitespaces) {
            byte[] space = model.escapeWhitespaces ? SPACE_SYMBOL : ONE_SPACE;
            while (n >= space.length && Arrays.equals(w.norm, n - space.length, n, space, 0, space.length)) {
                n -= space.length;
            }
        }
        if (model.treatWhitespaceAsSuffix && addDummyPrefix) {
            n = appendSpace(w, n);
        }
        return n;
    }

    private int appendSpace(Work w, int n) {
        w.ensureNorm(n + 3);
        if (model.escapeWhitespaces) {
            System.arraycopy(SPACE_SYMBOL, 0, w.norm, n, 3);
            return n + 3;
        }
        w.norm[n] = ' ';
        return n + 1;
    }

    /**
     * sentencepiece's Normalizer::NormalizePrefix: the normalized form of the longest unit at
     * {@code in[pos]}: a user-defined piece (kept as is), a charsmap rule, or one UTF-8
     * character (a malformed byte becomes U+FFFD). Result in w.prefixSrc/Off/Len and w.consumed.
     */
    private void normalizePrefix(byte[] in, int pos, int end, Work w) {
        int user = userDefined.length > 0 ? matchUserDefined(in, pos, end) : 0;
        if (user > 0) {
            setPrefix(w, in, pos, user, user);
            return;
        }
        if (charsMap != null) {
            int rule = charsMap.longestMatch(in, pos, end, w.charsMapValue);
            if (rule > 0) {
                int off = w.charsMapValue[0];
                setPrefix(w, charsMap.pool(), off, charsMap.replacementLength(off), rule);
                return;
            }
        }
        int charLen = Utf8.validCharLength(in, pos, end);
        if (charLen == 0) {
            setPrefix(w, REPLACEMENT, 0, 3, 1);
        } else {
            setPrefix(w, in, pos, charLen, charLen);
        }
    }

    private static void setPrefix(Work w, byte[] src, int off, int len, int consumed) {
        w.prefixSrc = src;
        w.prefixOff = off;
        w.prefixLen = len;
        w.consumed = consumed;
    }

    /** Length of the longest user-defined piece at {@code buf[pos]}, or 0. */
    private int matchUserDefined(byte[] buf, int pos, int end) {
        if (!userDefinedFirstByte[buf[pos] & 0xFF]) {
            return 0;
        }
        int best = 0;
        for (byte[] p : userDefined) {
            if (p.length > best && p.length <= end - pos && Arrays.equals(p, 0, p.length, buf, pos, pos + p.length)) {
                best = p.length;
            }
        }
        return best;
    }

    // ---------------------------------------------------------------- BPE

    /** Splits normalized text into words that BPE can treat separately, and encodes each. */
    private void encodeWords(Work w, int normLen, IntList out) {
        byte[] norm = w.norm;
        int wordStart = 0;
        int pos = 0;
        boolean prevWasSpace = false;
        while (pos < normLen) {
            int user = userDefined.length > 0 ? matchUserDefined(norm, pos, normLen) : 0;
            if (user > 0) {
                encodeWord(w, wordStart, pos, out);
                out.add(pieceId(norm, pos, user));
                pos += user;
                wordStart = pos;
                prevWasSpace = false;
                continue;
            }
            boolean isSpace = pos + 3 <= normLen && norm[pos] == SPACE_SYMBOL[0] && norm[pos + 1] == SPACE_SYMBOL[1] && norm[pos + 2] == SPACE_SYMBOL[2];
            if (isSpace && !prevWasSpace && pos > wordStart) {
                encodeWord(w, wordStart, pos, out);
                wordStart = pos;
            }
            prevWasSpace = isSpace;
            int charLen = Utf8.charLength(norm[pos]);
            pos += Math.min(charLen, normLen - pos);
        }
        encodeWord(w, wordStart, normLen, out);
    }

    private void encodeWord(Work w, int start, int end, IntList out) {
        int len = end - start;
        if (len == 0) {
            return;
        }
        byte[] norm = w.norm;
        if (len <= CACHEABLE_WORD_BYTES) {
            int[] cached = w.cache.get(norm, start, len);
            if (cached != null) {
                append(w, cached, cached.length, out);
                return;
            }
        }
        w.ensureSymbols(len);
        int count = splitSymbols(norm, start, end, w);
        w.pieceIds.clear();
        bpe(w, count, w.pieceIds);
        if (len <= CACHEABLE_WORD_BYTES) {
            w.cache.put(norm, start, len, w.pieceIds.toArray());
        }
        append(w, w.pieceIds.data, w.pieceIds.size, out);
    }

    /** Initial symbols: one per UTF-8 character, or one per user-defined piece (frozen). */
    private int splitSymbols(byte[] buf, int start, int end, Work w) {
        int count = 0;
        int pos = start;
        while (pos < end) {
            int user = userDefined.length > 0 ? matchUserDefined(buf, pos, end) : 0;
            int len;
            if (user > 0) {
                len = user;
                w.frozen[count] = true;
            } else {
                len = Math.min(Utf8.charLength(buf[pos]), end - pos);
                if (Utf8.validCharLength(buf, pos, end) == 0) {
                    len = 1;
                }
                w.frozen[count] = false;
            }
            w.symStart[count] = pos;
            w.symLen[count] = len;
            w.prev[count] = count - 1;
            w.next[count] = pos + len < end ? count + 1 : -1;
            count++;
            pos += len;
        }
        return count;
    }

    /**
     * sentencepiece's bpe::Model::Encode over the symbols in {@code w}: repeatedly merges the
     * adjacent pair whose concatenation is the highest-scoring piece (leftmost on ties).
     */
    private void bpe(Work w, int count, IntList out) {
        if (count == 0) {
            return;
        }
        byte[] buf = w.norm;
        Heap heap = w.heap;
        heap.clear();
        if (hasUnused) {
            w.revMerge.clear();
        }
        for (int i = 1; i < count; i++) {
            maybeAddPair(w, buf, i - 1, i);
        }
        while (!heap.isEmpty()) {
            int top = heap.pop();
            int left = heap.left[top], right = heap.right[top];
            // Skip pairs made stale by an earlier merge.
            if (w.symLen[left] == 0 || w.symLen[right] == 0 || w.symLen[left] + w.symLen[right] != heap.size[top]) {
                continue;
            }
            w.symLen[left] += w.symLen[right];
            w.next[left] = w.next[right];
            if (w.next[right] >= 0) {
                w.prev[w.next[right]] = left;
            }
            w.symLen[right] = 0;
            maybeAddPair(w, buf, w.prev[left], left);
            maybeAddPair(w, buf, left, w.next[left]);
        }
        for (int i = 0; i != -1; i = w.next[i]) {
            if (hasUnused) {
                resegment(w, buf, w.symStart[i], w.symLen[i], out);
            } else {
                emitPiece(buf, w.symStart[i], w.symLen[i], out);
            }
        }
    }

    private void maybeAddPair(Work w, byte[] buf, int left, int right) {
        if (left < 0 || right < 0 || w.frozen[left] || w.frozen[right]) {
            return;
        }
        int size = w.symLen[left] + w.symLen[right];
        int id = mergeable.find(buf, w.symStart[left], size);
        if (id < 0) {
            return;
        }
        w.heap.push(model.scores[id], left, right, size);
        if (hasUnused && model.types[id] == SentencePieceModel.UNUSED) {
            w.revMerge.put(id, new int[] {w.symStart[left], w.symLen[left], w.symStart[right], w.symLen[right]});
        }
    }

    /** An UNUSED piece is never output: it is split back into the two pieces it was merged from. */
    private void resegment(Work w, byte[] buf, int start, int len, IntList out) {
        int id = pieceId(buf, start, len);
        if (id >= 0 && model.types[id] == SentencePieceModel.UNUSED) {
            int[] parts = w.revMerge.get(id);
            if (parts != null) {
                resegment(w, buf, parts[0], parts[1], out);
                resegment(w, buf, parts[2], parts[3], out);
                return;
            }
        }
        emitPiece(buf, start, len, out);
    }

    private int pieceId(byte[] buf, int start, int len) {
        int id = reserved.find(buf, start, len);
        return id >= 0 ? id : mergeable.find(buf, start, len);
    }

    /** Appends the id of one final piece; an unknown piece becomes its bytes when byte_fallback is on. */
    private void emitPiece(byte[] buf, int start, int len, IntList out) {
        int id = pieceId(buf, start, len);
        if (id >= 0 && model.types[id] != SentencePieceModel.UNKNOWN) {
            out.add(id);
        } else if (model.byteFallback) {
            for (int i = start; i < start + len; i++) {
                out.add(byteIds[buf[i] & 0xFF]);
            }
        } else {
            out.add(model.unkId);
        }
    }

    // ---------------------------------------------------------------- decoding

    /** Text of {@code ids}, as sentencepiece's {@code decode}: byte pieces reassembled as UTF-8. */
    public String decode(int[] ids) {
        return decode(ids, 0, ids.length);
    }

    public String decode(int[] ids, int from, int to) {
        StringBuilder sb = new StringBuilder();
        byte[] bytes = new byte[16];
        int pendingBytes = 0;
        boolean atStart = true;
        for (int k = from; k < to; k++) {
            int id = ids[k];
            if (id < 0 || id >= model.size()) {
                throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (size " + model.size() + ")");
            }
            int b = pieceOfByte[id];
            if (b >= 0) {
                if (pendingBytes == bytes.length) {
                    bytes = Arrays.copyOf(bytes, bytes.length * 2);
                }
                bytes[pendingBytes++] = (byte) b;
                continue;
            }
            if (pendingBytes > 0) {
                atStart = appendBytes(sb, bytes, pendingBytes, atStart);
                pendingBytes = 0;
            }
            int type = model.types[id];
            if (type == SentencePieceModel.CONTROL) {
                continue;
            }
            String text = type == SentencePieceModel.UNKNOWN ? model.unkSurface : model.pieces[id];
            if (atStart && (model.addDummyPrefix || model.removeExtraWhitespaces) && text.startsWith("\u2581")) {
                text = text.substring(1);
            }
            if (!text.isEmpty() || type == SentencePieceModel.UNKNOWN) {
                atStart = false;
            }
            sb.append(text.replace('\u2581', ' '));
        }
        if (pendingBytes > 0) {
            appendBytes(sb, bytes, pendingBytes, atStart);
        }
        return sb.toString();
    }

    private boolean appendBytes(StringBuilder sb, byte[] bytes, int n, boolean atStart) {
        String text = Utf8.decodeLenient(bytes, n);
        if (atStart && (model.addDummyPrefix || model.removeExtraWhitespaces) && text.startsWith("\u2581")) {
            text = text.substring(1);
        }
        sb.append(text.replace('\u2581', ' '));
        return atStart && text.isEmpty();
    }

    /**
     * The bytes id contributes to decoded text (a byte piece's byte, a piece's UTF-8 with the
     * whitespace mark as a space), or null for control and unknown ids, which decode to nothing
     * dependable. Constrained decoding walks the vocabulary with this.
     */
    public byte[] pieceBytes(int id) {
        if (id < 0 || id >= model.size()) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (size " + model.size() + ")");
        }
        if (pieceOfByte[id] >= 0) {
            return new byte[] {(byte) pieceOfByte[id]};
        }
        int type = model.types[id];
        if (type == SentencePieceModel.CONTROL || type == SentencePieceModel.UNKNOWN || type == SentencePieceModel.UNUSED) {
            return null;
        }
        return model.pieces[id].replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
    }

    /** The id of a piece's exact text, or -1 (for tokens named in configs, like "reserved_0"). */
    public int pieceToId(String piece) {
        byte[] b = piece.getBytes(StandardCharsets.UTF_8);
        return pieceId(b, 0, b.length);
    }

    /** The byte a byte-fallback piece stands for, or -1 for any other id. */
    public int byteValue(int id) {
        return id >= 0 && id < pieceOfByte.length ? pieceOfByte[id] : -1;
    }

    private static int parseBytePiece(String p) {
        if (p.length() != 6 || !p.startsWith("<0x") || p.charAt(5) != '>') {
            return -1;
        }
        try {
            return Integer.parseInt(p.substring(3, 5), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static boolean noPieceHasInnerSpace(SentencePieceModel m, boolean[] mergeable) {
        for (int i = 0; i < m.size(); i++) {
            if (!mergeable[i]) {
                continue;
            }
            String p = m.pieces[i];
            int j = 0;
            while (j < p.length() && p.charAt(j) == '\u2581') {
                j++;
            }
            if (p.indexOf('\u2581', j) >= 0) {
                return false;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------- per-thread scratch

    /** Buffers reused across calls on one thread, so encoding a document allocates almost nothing. */
    static final class Work {
        byte[] input = new byte[1024];
        byte[] norm = new byte[1024];
        int[] symStart = new int[256], symLen = new int[256], prev = new int[256], next = new int[256];
        boolean[] frozen = new boolean[256];
        final Heap heap = new Heap();
        final IntList ids = new IntList();
        final IntList pieceIds = new IntList();  // one word's ids before they join the output
        int outStart;                            // where the current encode call's ids begin
        final WordCache cache = new WordCache();
        final java.util.HashMap<Integer, int[]> revMerge = new java.util.HashMap<>();
        final int[] charsMapValue = new int[1];
        byte[] prefixSrc;
        int prefixOff, prefixLen, consumed;

        void ensureNorm(int n) {
            if (norm.length < n) {
                norm = Arrays.copyOf(norm, Math.max(n, norm.length * 2));
            }
        }

        void ensureSymbols(int n) {
            if (symStart.length < n) {
                int c = Math.max(n, symStart.length * 2);
                symStart = new int[c];
                symLen = new int[c];
                prev = new int[c];
                next = new int[c];
                frozen = new boolean[c];
            }
        }
    }

    /** Max-heap of candidate merges: higher score first, then the leftmost. Parallel arrays, no objects. */
    static final class Heap {
        float[] score = new float[256];
        int[] left = new int[256], right = new int[256], size = new int[256];
        int[] heap = new int[256];
        int n, entries;

        void clear() {
            n = 0;
            entries = 0;
        }

        boolean isEmpty() {
            return n == 0;
        }

        void push(float s, int l, int r, int sz) {
            if (entries == score.length) {
                int c = entries * 2;
                score = Arrays.copyOf(score, c);
                left = Arrays.copyOf(left, c);
                right = Arrays.copyOf(right, c);
                size = Arrays.copyOf(size, c);
                heap = Arrays.copyOf(heap, c);
            }
            int e = entries++;
            score[e] = s;
            left[e] = l;
            right[e] = r;
            size[e] = sz;
            int i = n++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (!before(e, heap[parent])) {
                    break;
                }
                heap[i] = heap[parent];
                i = parent;
            }
            heap[i] = e;
        }

        int pop() {
            int top = heap[0];
            int last = heap[--n];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= n) {
                    break;
                }
                if (child + 1 < n && before(heap[child + 1], heap[child])) {
                    child++;
                }
                if (!before(heap[child], last)) {
                    break;
                }
                heap[i] = heap[child];
                i = child;
            }
            if (n > 0) {
                heap[i] = last;
            }
            return top;
        }

        private boolean before(int a, int b) {
            return score[a] > score[b] || (score[a] == score[b] && left[a] < left[b]);
        }
    }
}
