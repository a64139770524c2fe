package io.longdoc.job.demo;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Trains a small SentencePiece BPE tokenizer for the demo model, so the demo needs nothing
 * downloaded: word-level BPE (words start with the whitespace mark ▁, as SentencePiece splits
 * them), characters seen at least twice as pieces, byte fallback for everything else, and the
 * result written as a {@code tokenizer.model} protobuf that the sentencepiece library itself
 * loads (the tests compare its ids with ours).
 */
public final class DemoTokenizer {
    static final String SPACE = "\u2581";
    private static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, BYTE = 6;

    private DemoTokenizer() {
    }

    /** A tokenizer.model with at most {@code vocabSize} pieces, learned from {@code texts}. */
    public static byte[] train(List<String> texts, int vocabSize) {
        // Words as SentencePiece sees them: spaces become ▁, which starts each word.
        Map<String, Integer> wordCounts = new HashMap<>();
        Map<Integer, Integer> charCounts = new TreeMap<>();
        for (String text : texts) {
            String escaped = SPACE + text.replace(" ", SPACE);
            for (String word : escaped.split("(?=" + SPACE + ")")) {
                if (!word.isEmpty()) {
                    wordCounts.merge(word, 1, Integer::sum);
                }
            }
            escaped.codePoints().forEach(c -> charCounts.merge(c, 1, Integer::sum));
        }
        List<String> alphabet = new ArrayList<>();
        charCounts.forEach((c, n) -> {
            if (n >= 2 || c == SPACE.codePointAt(0)) {
                alphabet.add(new String(Character.toChars(c)));
            }
        });
        int merges = Math.max(0, vocabSize - 3 - 256 - alphabet.size());

        // Words as symbol sequences, merged greedily by pair frequency.
        List<List<String>> words = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        wordCounts.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
            List<String> symbols = new ArrayList<>();
            e.getKey().codePoints().forEach(c -> symbols.add(new String(Character.toChars(c))));
            words.add(symbols);
            counts.add(e.getValue());
        });
        LinkedHashMap<String, Float> learned = new LinkedHashMap<>();
        for (int m = 0; m < merges; m++) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<String> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++) {
                    pairs.merge(s.get(i) + "\u0000" + s.get(i + 1), counts.get(w), Integer::sum);
                }
            }
            String best = null;
            int bestCount = 1;   // a pair seen once is not worth a piece
            for (Map.Entry<String, Integer> e : pairs.entrySet()) {
                if (e.getValue() > bestCount || (e.getValue() == bestCount && best != null && e.getKey().compareTo(best) < 0)) {
                    best = e.getKey();
                    bestCount = e.getValue();
                }
            }
            if (best == null) {
                break;
            }
            String left = best.substring(0, best.indexOf('\u0000')), right = best.substring(best.indexOf('\u0000') + 1);
            String merged = left + right;
            learned.putIfAbsent(merged, (float) -learned.size());
            for (List<String> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i).equals(left) && s.get(i + 1).equals(right)) {
                        s.set(i, merged);
                        s.remove(i + 1);
                    }
                }
            }
        }

        ByteArrayOutputStream model = new ByteArrayOutputStream();
        piece(model, "<unk>", 0f, UNKNOWN);
        piece(model, "<s>", 0f, CONTROL);
        piece(model, "</s>", 0f, CONTROL);
        for (int b = 0; b < 256; b++) {
            piece(model, String.format("<0x%02X>", b), 0f, BYTE);
        }
        for (Map.Entry<String, Float> e : learned.entrySet()) {
            piece(model, e.getKey(), e.getValue(), NORMAL);
        }
        float charScore = -learned.size();
        for (String c : alphabet) {
            if (!learned.containsKey(c)) {
                piece(model, c, charScore--, NORMAL);
            }
        }
        ByteArrayOutputStream trainer = new ByteArrayOutputStream();
        varintField(trainer, 3, 2);                     // model_type: BPE
        varintField(trainer, 4, 3 + 256 + learned.size() + alphabet.size());  // vocab_size (informational)
        varintField(trainer, 35, 1);                    // byte_fallback
        varintField(trainer, 40, 0);                    // unk_id
        varintField(trainer, 41, 1);                    // bos_id
        varintField(trainer, 42, 2);                    // eos_id
        varintField(trainer, 43, -1);                   // pad_id: none
        ByteArrayOutputStream normalizer = new ByteArrayOutputStream();
        bytesField(normalizer, 1, "identity".getBytes(StandardCharsets.UTF_8));
        varintField(normalizer, 3, 1);                  // add_dummy_prefix
        varintField(normalizer, 4, 0);                  // remove_extra_whitespaces: keep the text as it is
        varintField(normalizer, 5, 1);                  // escape_whitespaces
        bytesField(model, 2, trainer.toByteArray());
        bytesField(model, 3, normalizer.toByteArray());
        return model.toByteArray();
    }

    private static void piece(ByteArrayOutputStream model, String text, float score, int type) {
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        bytesField(p, 1, text.getBytes(StandardCharsets.UTF_8));
        tag(p, 2, 5);
        int bits = Float.floatToIntBits(score);
        for (int i = 0; i < 4; i++) {
            p.write(bits >>> (8 * i));
        }
        varintField(p, 3, type);
        bytesField(model, 1, p.toByteArray());
    }

    // ---------------------------------------------------------------- protobuf wire format

    private static void tag(ByteArrayOutputStream out, int field, int wire) {
        varint(out, (long) field << 3 | wire);
    }

    private static void varintField(ByteArrayOutputStream out, int field, long value) {
        tag(out, field, 0);
        varint(out, value);
    }

    private static void bytesField(ByteArrayOutputStream out, int field, byte[] value) {
        tag(out, field, 2);
        varint(out, value.length);
        out.write(value, 0, value.length);
    }

    /** Unsigned LEB128; a negative int32 is written as its 64-bit two's complement, as protobuf does. */
    private static void varint(ByteArrayOutputStream out, long v) {
        while ((v & ~0x7FL) != 0) {
            out.write((int) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        out.write((int) v);
    }
}
