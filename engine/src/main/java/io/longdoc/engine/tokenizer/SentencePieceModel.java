package io.longdoc.engine.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of a SentencePiece {@code tokenizer.model} (protobuf ModelProto) that encoding and
 * decoding need: the pieces with their scores and types, and the normalizer and trainer settings.
 */
public final class SentencePieceModel {
    /** Piece types, as numbered in sentencepiece_model.proto. */
    public static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;
    /** Model types, as numbered in sentencepiece_model.proto. */
    public static final int UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4;

    /** tokenizer.model files are about 1 MB; anything this big is not one. */
    static final long MAX_FILE_BYTES = 256L << 20;

    final String[] pieces;
    final float[] scores;
    final int[] types;
    final int modelType;
    final boolean byteFallback;
    final boolean treatWhitespaceAsSuffix;
    final int unkId, bosId, eosId, padId;
    final String unkSurface;
    final String normalizerName;
    final byte[] precompiledCharsmap;
    final boolean addDummyPrefix, removeExtraWhitespaces, escapeWhitespaces;

    private SentencePieceModel(Builder b) {
        this.pieces = b.pieces.toArray(new String[0]);
        this.scores = new float[pieces.length];
        this.types = new int[pieces.length];
        for (int i = 0; i < pieces.length; i++) {
            scores[i] = b.scores.get(i);
            types[i] = b.types.get(i);
        }
        this.modelType = b.modelType;
        this.byteFallback = b.byteFallback;
        this.treatWhitespaceAsSuffix = b.treatWhitespaceAsSuffix;
        this.unkId = b.unkId;
        this.bosId = b.bosId;
        this.eosId = b.eosId;
        this.padId = b.padId;
        this.unkSurface = b.unkSurface;
        this.normalizerName = b.normalizerName;
        this.precompiledCharsmap = b.precompiledCharsmap;
        this.addDummyPrefix = b.addDummyPrefix;
        this.removeExtraWhitespaces = b.removeExtraWhitespaces;
        this.escapeWhitespaces = b.escapeWhitespaces;
    }

    public int size() {
        return pieces.length;
    }

    public String piece(int id) {
        return pieces[id];
    }

    public int type(int id) {
        return types[id];
    }

    public float score(int id) {
        return scores[id];
    }

    public int bosId() {
        return bosId;
    }

    public int eosId() {
        return eosId;
    }

    public int unkId() {
        return unkId;
    }

    public int padId() {
        return padId;
    }

    public static SentencePieceModel load(Path file) {
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_FILE_BYTES) {
                throw new TokenizerFormatException(file + ": " + size + " bytes is too large for a tokenizer.model");
            }
            try (InputStream in = Files.newInputStream(file)) {
                bytes = in.readNBytes((int) size);
            }
        } catch (IOException e) {
            throw new TokenizerFormatException("cannot read tokenizer model " + file + ": " + e, e);
        }
        try {
            return parse(bytes);
        } catch (TokenizerFormatException e) {
            throw new TokenizerFormatException(file + ": " + e.getMessage(), e);
        }
    }

    public static SentencePieceModel parse(byte[] bytes) {
        if (bytes.length == 0) {
            throw new TokenizerFormatException("empty tokenizer model");
        }
        Builder b = new Builder();
        ProtoReader model = new ProtoReader(bytes, "tokenizer model");
        while (model.hasMore()) {
            int tag = model.readTag();
            int field = tag >>> 3, wire = tag & 7;
            if (field == 1 && wire == ProtoReader.LENGTH_DELIMITED) {
                readPiece(model.readMessage("piece #" + b.pieces.size()), b);
            } else if (field == 2 && wire == ProtoReader.LENGTH_DELIMITED) {
                readTrainerSpec(model.readMessage("trainer_spec"), b);
            } else if (field == 3 && wire == ProtoReader.LENGTH_DELIMITED) {
                readNormalizerSpec(model.readMessage("normalizer_spec"), b);
            } else {
                model.skip(wire);
            }
        }
        return b.validate();
    }

    private static void readPiece(ProtoReader r, Builder b) {
        String piece = null;
        float score = 0f;
        int type = NORMAL;
        while (r.hasMore()) {
            int tag = r.readTag();
            switch (tag) {
                case (1 << 3) | ProtoReader.LENGTH_DELIMITED -> piece = r.readString();
                case (2 << 3) | ProtoReader.FIXED32 -> score = r.readFloat();
                case (3 << 3) | ProtoReader.VARINT -> type = r.readInt32();
                default -> r.skip(tag & 7);
            }
        }
        if (piece == null) {
            throw r.corrupt("piece without text");
        }
        if (type < NORMAL || type > BYTE) {
            throw r.corrupt("unknown piece type " + type);
        }
        b.pieces.add(piece);
        b.scores.add(score);
        b.types.add(type);
    }

    private static void readTrainerSpec(ProtoReader r, Builder b) {
        while (r.hasMore()) {
            int tag = r.readTag();
            int field = tag >>> 3, wire = tag & 7;
            if (wire == ProtoReader.VARINT) {
                switch (field) {
                    case 3 -> b.modelType = r.readInt32();
                    case 24 -> b.treatWhitespaceAsSuffix = r.readBool();
                    case 35 -> b.byteFallback = r.readBool();
                    case 40 -> b.unkId = r.readInt32();
                    case 41 -> b.bosId = r.readInt32();
                    case 42 -> b.eosId = r.readInt32();
                    case 43 -> b.padId = r.readInt32();
                    default -> r.skip(wire);
                }
            } else if (field == 44 && wire == ProtoReader.LENGTH_DELIMITED) {
                b.unkSurface = r.readString();
            } else {
                r.skip(wire);
            }
        }
    }

    private static void readNormalizerSpec(ProtoReader r, Builder b) {
        while (r.hasMore()) {
            int tag = r.readTag();
            int field = tag >>> 3, wire = tag & 7;
            if (field == 1 && wire == ProtoReader.LENGTH_DELIMITED) {
                b.normalizerName = r.readString();
            } else if (field == 2 && wire == ProtoReader.LENGTH_DELIMITED) {
                b.precompiledCharsmap = r.readBytes();
            } else if (field == 3 && wire == ProtoReader.VARINT) {
                b.addDummyPrefix = r.readBool();
            } else if (field == 4 && wire == ProtoReader.VARINT) {
                b.removeExtraWhitespaces = r.readBool();
            } else if (field == 5 && wire == ProtoReader.VARINT) {
                b.escapeWhitespaces = r.readBool();
            } else {
                r.skip(wire);
            }
        }
    }

    private static final class Builder {
        final List<String> pieces = new ArrayList<>();
        final List<Float> scores = new ArrayList<>();
        final List<Integer> types = new ArrayList<>();
        // Defaults are those of sentencepiece_model.proto.
        int modelType = UNIGRAM;
        boolean byteFallback = false;
        boolean treatWhitespaceAsSuffix = false;
        int unkId = 0, bosId = 1, eosId = 2, padId = -1;
        String unkSurface = " \u2047 ";
        String normalizerName = "";
        byte[] precompiledCharsmap = new byte[0];
        boolean addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true;

        SentencePieceModel validate() {
            if (modelType != BPE) {
                String name = switch (modelType) {
                    case UNIGRAM -> "UNIGRAM";
                    case WORD -> "WORD";
                    case CHAR -> "CHAR";
                    default -> "#" + modelType;
                };
                throw new TokenizerFormatException("unsupported model type " + name + ": LongDoc implements SentencePiece BPE models only");
            }
            if (pieces.isEmpty()) {
                throw new TokenizerFormatException("tokenizer model has no pieces (truncated or not a tokenizer.model)");
            }
            if (unkId < 0 || unkId >= pieces.size() || types.get(unkId) != UNKNOWN) {
                throw new TokenizerFormatException("unk_id " + unkId + " does not name an UNKNOWN piece");
            }
            for (int i = 0; i < types.size(); i++) {
                if (types.get(i) == UNKNOWN && i != unkId) {
                    throw new TokenizerFormatException("piece #" + i + " is a second UNKNOWN piece");
                }
                if (pieces.get(i).isEmpty()) {
                    throw new TokenizerFormatException("piece #" + i + " is empty");
                }
            }
            return new SentencePieceModel(this);
        }
    }
}
