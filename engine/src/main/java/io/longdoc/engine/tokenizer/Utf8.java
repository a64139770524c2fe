package io.longdoc.engine.tokenizer;

/** UTF-8 helpers with sentencepiece's treatment of malformed text. */
final class Utf8 {
    private Utf8() {
    }

    /**
     * Encodes {@code s} into {@code w.input}; returns the byte length. A lone surrogate (invalid
     * UTF-16) becomes U+FFFD, which is what sentencepiece makes of any malformed character.
     */
    static int encode(String s, SentencePieceTokenizer.Work w) {
        int n = s.length();
        if (w.input.length < n * 3) {
            w.input = new byte[Math.max(n * 3, w.input.length * 2)];
        }
        byte[] out = w.input;
        int j = 0;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                out[j++] = (byte) c;
            } else if (c < 0x800) {
                out[j++] = (byte) (0xC0 | c >> 6);
                out[j++] = (byte) (0x80 | c & 0x3F);
            } else if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                int cp = Character.toCodePoint(c, s.charAt(++i));
                out[j++] = (byte) (0xF0 | cp >> 18);
                out[j++] = (byte) (0x80 | cp >> 12 & 0x3F);
                out[j++] = (byte) (0x80 | cp >> 6 & 0x3F);
                out[j++] = (byte) (0x80 | cp & 0x3F);
            } else {
                if (Character.isSurrogate(c)) {
                    c = '\uFFFD';
                }
                out[j++] = (byte) (0xE0 | c >> 12);
                out[j++] = (byte) (0x80 | c >> 6 & 0x3F);
                out[j++] = (byte) (0x80 | c & 0x3F);
            }
        }
        return j;
    }

    /** Length announced by a lead byte (1 for a stray continuation byte). */
    static int charLength(byte lead) {
        int b = lead & 0xFF;
        if (b < 0xC0) {
            return 1;
        }
        if (b < 0xE0) {
            return 2;
        }
        if (b < 0xF0) {
            return 3;
        }
        return b < 0xF8 ? 4 : 1;
    }

    /** Length of the well-formed character at {@code buf[pos]}, or 0 when it is malformed. */
    static int validCharLength(byte[] buf, int pos, int end) {
        int b0 = buf[pos] & 0xFF;
        if (b0 < 0x80) {
            return 1;
        }
        int len = charLength(buf[pos]);
        if (len == 1 || pos + len > end) {
            return 0;
        }
        int cp = b0 & (0xFF >> (len + 1));
        for (int i = 1; i < len; i++) {
            int b = buf[pos + i] & 0xFF;
            if ((b & 0xC0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (b & 0x3F);
        }
        boolean overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        return len;
    }

    /** Decodes bytes, turning each byte of a malformed sequence into U+FFFD (as sentencepiece does). */
    static String decodeLenient(byte[] buf, int n) {
        StringBuilder sb = new StringBuilder(n);
        int pos = 0;
        while (pos < n) {
            int len = validCharLength(buf, pos, n);
            if (len == 0) {
                sb.append('\uFFFD');
                pos++;
                continue;
            }
            sb.append(new String(buf, pos, len, java.nio.charset.StandardCharsets.UTF_8));
            pos += len;
        }
        return sb.toString();
    }
}
