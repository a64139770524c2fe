package io.longdoc.engine.tokenizer;

import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;

/**
 * A bounds-checked reader of the protobuf wire format, enough for SentencePiece's ModelProto.
 *
 * <p>The model file is untrusted input: every length is checked against what is left of the
 * enclosing message before anything is allocated, so a corrupt file fails with a
 * {@link TokenizerFormatException} naming the offset instead of reading past the end,
 * hanging, or allocating a huge array.
 */
final class ProtoReader {
    static final int VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, FIXED32 = 5;

    private final byte[] buf;
    private int pos;
    private final int end;
    private final String what;

    ProtoReader(byte[] buf, String what) {
        this(buf, 0, buf.length, what);
    }

    private ProtoReader(byte[] buf, int start, int end, String what) {
        this.buf = buf;
        this.pos = start;
        this.end = end;
        this.what = what;
    }

    boolean hasMore() {
        return pos < end;
    }

    /** Reads a field tag; returns it as (fieldNumber << 3 | wireType). */
    int readTag() {
        long tag = readVarint();
        if (tag <= 0 || tag > Integer.MAX_VALUE) {
            throw corrupt("invalid field tag " + tag);
        }
        int field = (int) (tag >>> 3);
        if (field == 0) {
            throw corrupt("field number 0");
        }
        return (int) tag;
    }

    long readVarint() {
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= end) {
                throw corrupt("truncated varint");
            }
            byte b = buf[pos++];
            result |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return result;
            }
        }
        throw corrupt("varint longer than 10 bytes");
    }

    int readInt32() {
        return (int) readVarint();
    }

    boolean readBool() {
        return readVarint() != 0;
    }

    float readFloat() {
        if (end - pos < 4) {
            throw corrupt("truncated fixed32");
        }
        int bits = (buf[pos] & 0xFF) | (buf[pos + 1] & 0xFF) << 8 | (buf[pos + 2] & 0xFF) << 16 | (buf[pos + 3] & 0xFF) << 24;
        pos += 4;
        return Float.intBitsToFloat(bits);
    }

    /** A length-delimited field as a sub-reader over the same bytes. */
    ProtoReader readMessage(String name) {
        int len = readLength();
        ProtoReader sub = new ProtoReader(buf, pos, pos + len, name);
        pos += len;
        return sub;
    }

    byte[] readBytes() {
        int len = readLength();
        byte[] out = new byte[len];
        System.arraycopy(buf, pos, out, 0, len);
        pos += len;
        return out;
    }

    String readString() {
        int start = pos;
        int len = readLength();
        pos += len;
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(buf, pos - len, len))
                    .toString();
        } catch (CharacterCodingException e) {
            pos = start;
            throw corrupt("string is not valid UTF-8");
        }
    }

    void skip(int wireType) {
        switch (wireType) {
            case VARINT -> readVarint();
            case FIXED64 -> advance(8);
            case LENGTH_DELIMITED -> advance(readLength());
            case FIXED32 -> advance(4);
            default -> throw corrupt("unsupported wire type " + wireType);
        }
    }

    private void advance(int n) {
        if (end - pos < n) {
            throw corrupt("field runs past the end");
        }
        pos += n;
    }

    private int readLength() {
        long len = readVarint();
        if (len < 0 || len > end - pos) {
            throw corrupt("length " + len + " runs past the end (" + (end - pos) + " bytes left)");
        }
        return (int) len;
    }

    TokenizerFormatException corrupt(String why) {
        return new TokenizerFormatException("corrupt " + what + " at byte " + pos + ": " + why);
    }
}
