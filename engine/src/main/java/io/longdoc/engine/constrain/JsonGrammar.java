package io.longdoc.engine.constrain;

import io.longdoc.engine.constrain.JsonSchema.ArrayNode;
import io.longdoc.engine.constrain.JsonSchema.BooleanNode;
import io.longdoc.engine.constrain.JsonSchema.EnumNode;
import io.longdoc.engine.constrain.JsonSchema.Node;
import io.longdoc.engine.constrain.JsonSchema.NumberNode;
import io.longdoc.engine.constrain.JsonSchema.ObjectNode;
import io.longdoc.engine.constrain.JsonSchema.StringNode;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * A byte-level pushdown automaton that accepts exactly the compact JSON texts (no whitespace
 * between tokens, properties in the schema's order, optional ones may be left out) that are valid
 * for a {@link JsonSchema}, with well-formed UTF-8 inside strings.
 *
 * <p>A {@link State} is an immutable stack of frames, so the token mask can explore every token
 * of the vocabulary from the same state without copying. Feeding a byte returns the next state,
 * or null when the byte cannot continue any valid text. When a value ends, its frame is popped;
 * the parent frame under it was already left in its "after the value" shape when the value was
 * pushed. Values that end only when the next byte is not theirs (numbers, an enum literal that
 * is a prefix of another) pop and pass that byte on to the frame below.
 *
 * <p>Limits that keep every value representable: integers at most 18 digits (they fit a long),
 * numbers at most 15 integer and 15 fraction digits and a 2-digit exponent, no {@code \\uD800}–
 * {@code \\uDFFF} escapes (surrogates; characters beyond the BMP are written as UTF-8 instead).
 */
public final class JsonGrammar {
    private JsonGrammar() {
    }

    /** A parse state: the frame on top and the stack below it. {@link #isComplete()} once the root object closed. */
    public static final class State {
        final Frame top;
        final State below;

        State(Frame top, State below) {
            this.top = top;
            this.below = below;
        }

        public boolean isComplete() {
            return top == null;
        }

        /**
         * A value equal for two states exactly when no byte string of at most {@code horizon} bytes
         * is accepted by one and not the other: the frames' fields, except counts far enough from
         * their limits that {@code horizon} more bytes cannot reach them. The token mask of a state
         * depends only on this (horizon = the longest token), so masks can be cached under it.
         */
        public List<Object> key(int horizon) {
            List<Object> key = new java.util.ArrayList<>();
            for (State s = this; s.top != null; s = s.below) {
                key.add(s.top.key(horizon));
            }
            return key;
        }
    }

    private static final State COMPLETE = new State(null, null);

    /** The state before the first byte of a text for this schema. */
    public static State start(JsonSchema schema) {
        return new State(initial(schema.root()), COMPLETE);
    }

    /** The state after one more byte, or null when the byte is not allowed here. */
    public static State feed(State s, int b) {
        return s.top == null ? null : s.top.feed(b & 0xFF, s.below);
    }

    /** The state after all of {@code bytes}, or null when they do not continue a valid text. */
    public static State feed(State s, byte[] bytes) {
        for (byte b : bytes) {
            s = feed(s, b);
            if (s == null) {
                return null;
            }
        }
        return s;
    }

    /** True when {@code text} is a complete valid document for the schema (the grammar's own check, used by tests). */
    public static boolean accepts(JsonSchema schema, String text) {
        State s = feed(start(schema), text.getBytes(StandardCharsets.UTF_8));
        return s != null && s.isComplete();
    }

    // ------------------------------------------------------------------ frames

    abstract static class Frame {
        /** Consumes byte b with {@code below} under this frame; returns the new state or null. */
        abstract State feed(int b, State below);

        /** This frame's part of {@link State#key}. Schema nodes compare by identity. */
        abstract List<Object> key(int horizon);
    }

    /** A count as the key sees it: exact near a limit, else one value ("free") that stands for all. */
    static int canonical(int count, int min, int max, int horizon) {
        return count >= min && (long) max - count > horizon ? -1 : count;
    }

    /** Schema nodes in keys by identity: equal schemas parsed twice are different nodes (a cache miss, never a wrong hit). */
    static Object id(Object node) {
        return new IdentityKey(node);
    }

    private record IdentityKey(Object node) {
        @Override
        public boolean equals(Object o) {
            return o instanceof IdentityKey k && k.node == node;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(node);
        }
    }

    /** The frame that reads a value of this schema from its first byte. */
    static Frame initial(Node n) {
        if (n instanceof ObjectNode o) {
            return new ObjectFrame(o, 0, false, true);
        } else if (n instanceof StringNode str) {
            return new StringFrame(str, StringFrame.OPEN, 0, 0, 0);
        } else if (n instanceof NumberNode num) {
            return new NumberFrame(num.integer(), NumberFrame.START, 0);
        } else if (n instanceof BooleanNode) {
            return new ChoiceFrame(BOOLEANS, ALL_OF_TWO, 0);
        } else if (n instanceof EnumNode e) {
            return ChoiceFrame.of(e.literalBytes());
        } else if (n instanceof ArrayNode a) {
            return new ArrayFrame(a, ArrayFrame.OPEN, 0);
        }
        throw new IllegalArgumentException("schema node " + n);
    }

    private static final byte[][] BOOLEANS = {"true".getBytes(StandardCharsets.US_ASCII), "false".getBytes(StandardCharsets.US_ASCII)};
    private static final int[] ALL_OF_TWO = {0, 1};

    /** {@code {"a":..,"b":..}}: between values (or before the first) it takes ',' / '"' to start a key, or '}'. */
    static final class ObjectFrame extends Frame {
        final ObjectNode o;
        final int next;        // first property that may still be written
        final boolean wroteAny;
        final boolean open;    // still waiting for '{'

        ObjectFrame(ObjectNode o, int next, boolean wroteAny, boolean open) {
            this.o = o;
            this.next = next;
            this.wroteAny = wroteAny;
            this.open = open;
        }

        @Override
        List<Object> key(int horizon) {
            return List.of("object", id(o), next, wroteAny, open);
        }

        @Override
        State feed(int b, State below) {
            if (open) {
                return b == '{' ? new State(new ObjectFrame(o, 0, false, false), below) : null;
            }
            if (b == '}') {
                return requiredLeft() ? null : below;
            }
            int last = lastCandidate();
            if (last < next) {
                return null;
            }
            if (wroteAny && b == ',') {
                return new State(new KeyFrame(o, next, last, 0), below);
            }
            if (!wroteAny && b == '"') {
                return new KeyFrame(o, next, last, 0).feed(b, below);
            }
            return null;
        }

        private boolean requiredLeft() {
            for (int i = next; i < o.properties().size(); i++) {
                if (o.properties().get(i).required()) {
                    return true;
                }
            }
            return false;
        }

        /** Properties next..last may come next: skipping optional ones, never a required one. */
        private int lastCandidate() {
            int n = o.properties().size();
            for (int i = next; i < n; i++) {
                if (o.properties().get(i).required()) {
                    return i;
                }
            }
            return n - 1;
        }
    }

    /** Reads {@code "name":} for one of properties from..to, then pushes the value of the one written. */
    static final class KeyFrame extends Frame {
        final ObjectNode o;
        final int from, to;
        final int matched;   // bytes of the key written so far
        final int writtenAs; // a candidate whose first {@code matched} bytes are those written (any, when matched == 0)

        KeyFrame(ObjectNode o, int from, int to, int matched) {
            this(o, from, to, matched, from);
        }

        private KeyFrame(ObjectNode o, int from, int to, int matched, int writtenAs) {
            this.o = o;
            this.from = from;
            this.to = to;
            this.matched = matched;
            this.writtenAs = writtenAs;
        }

        @Override
        List<Object> key(int horizon) {
            return List.of("key", id(o), from, to, matched, matched == 0 ? -1 : writtenAs);
        }

        @Override
        State feed(int b, State below) {
            byte[] written = keyBytes(o, writtenAs);
            int match = -1, count = 0;
            for (int i = from; i <= to; i++) {
                byte[] key = keyBytes(o, i);
                if (matched < key.length && (key[matched] & 0xFF) == b && java.util.Arrays.equals(key, 0, matched, written, 0, matched)) {
                    if (match < 0) {
                        match = i;
                    }
                    count++;
                }
            }
            if (match < 0) {
                return null;
            }
            if (count == 1 && keyBytes(o, match).length == matched + 1) {
                // The key is complete (its closing '":' makes it unique): its value comes next.
                JsonSchema.Property p = o.properties().get(match);
                return new State(initial(p.schema()), new State(new ObjectFrame(o, match + 1, true, false), below));
            }
            return new State(new KeyFrame(o, from, to, matched + 1, match), below);
        }
    }

    /** {@code "name":} as bytes, JSON-escaped (computed once when the schema was parsed). */
    static byte[] keyBytes(ObjectNode o, int i) {
        return o.keys()[i];
    }

    /** One of a fixed set of literals (true/false, enum values). A literal that is a prefix of another ends on the next foreign byte. */
    static final class ChoiceFrame extends Frame {
        final byte[][] literals;
        final int[] alive;   // literals that match the bytes read so far
        final int matched;

        ChoiceFrame(byte[][] literals, int[] alive, int matched) {
            this.literals = literals;
            this.alive = alive;
            this.matched = matched;
        }

        static ChoiceFrame of(byte[][] literals) {
            int[] all = new int[literals.length];
            for (int i = 0; i < all.length; i++) {
                all[i] = i;
            }
            return new ChoiceFrame(literals, all, 0);
        }

        @Override
        List<Object> key(int horizon) {
            return List.of("choice", id(literals), java.util.Arrays.stream(alive).boxed().toList(), matched);
        }

        @Override
        State feed(int b, State below) {
            int n = 0;
            boolean completeHere = false;
            for (int i : alive) {
                if (literals[i].length > matched && (literals[i][matched] & 0xFF) == b) {
                    n++;
                }
                completeHere |= literals[i].length == matched;
            }
            if (n == 0) {
                // A literal that is complete ends here; the byte belongs to what follows.
                return completeHere ? JsonGrammar.feed(below, b) : null;
            }
            int[] next = new int[n];
            int k = 0;
            for (int i : alive) {
                if (literals[i].length > matched && (literals[i][matched] & 0xFF) == b) {
                    next[k++] = i;
                }
            }
            if (n == 1 && literals[next[0]].length == matched + 1) {
                return below;
            }
            return new State(new ChoiceFrame(literals, next, matched + 1), below);
        }
    }

    /** A JSON string, with escapes and well-formed UTF-8; length in code points between min and max. */
    static final class StringFrame extends Frame {
        static final int OPEN = 0, BODY = 1, ESCAPE = 2, HEX = 3, UTF8 = 4;
        final StringNode s;
        final int phase;
        final int length;     // characters so far
        final int left;       // hex digits (HEX) or continuation bytes (UTF8) still to come
        final int range;      // UTF8: allowed range of the next continuation byte, lo << 8 | hi

        StringFrame(StringNode s, int phase, int length, int left, int range) {
            this.s = s;
            this.phase = phase;
            this.length = length;
            this.left = left;
            this.range = range;
        }

        @Override
        List<Object> key(int horizon) {
            return List.of("string", id(s), phase, canonical(length, s.minLength(), s.maxLength(), horizon), left, range);
        }

        @Override
        State feed(int b, State below) {
            switch (phase) {
                case OPEN:
                    return b == '"' ? body(length, below) : null;
                case BODY:
                    if (b == '"') {
                        return length >= s.minLength() ? below : null;
                    }
                    if (length >= s.maxLength() || b < 0x20) {
                        return null;
                    }
                    if (b == '\\') {
                        return new State(new StringFrame(s, ESCAPE, length, 0, 0), below);
                    }
                    if (b < 0x80) {
                        return body(length + 1, below);
                    }
                    // A UTF-8 lead byte: how many continuation bytes follow, and the range of the
                    // first one (which rules out overlong forms, surrogates and code points past U+10FFFF).
                    if (b >= 0xC2 && b <= 0xDF) {
                        return utf8(1, 0x80, 0xBF, below);
                    } else if (b == 0xE0) {
                        return utf8(2, 0xA0, 0xBF, below);
                    } else if (b == 0xED) {
                        return utf8(2, 0x80, 0x9F, below);
                    } else if (b >= 0xE1 && b <= 0xEF) {
                        return utf8(2, 0x80, 0xBF, below);
                    } else if (b == 0xF0) {
                        return utf8(3, 0x90, 0xBF, below);
                    } else if (b >= 0xF1 && b <= 0xF3) {
                        return utf8(3, 0x80, 0xBF, below);
                    } else if (b == 0xF4) {
                        return utf8(3, 0x80, 0x8F, below);
                    }
                    return null;
                case UTF8:
                    if (b < (range >> 8) || b > (range & 0xFF)) {
                        return null;
                    }
                    return left == 1 ? body(length + 1, below) : new State(new StringFrame(s, UTF8, length, left - 1, 0x80 << 8 | 0xBF), below);
                case ESCAPE:
                    if (b == 'u') {
                        return new State(new StringFrame(s, HEX, length, 4, 0), below);
                    }
                    return "\"\\/bfnrt".indexOf(b) >= 0 ? body(length + 1, below) : null;
                case HEX:
                    // range = 1 after a first digit d/D: then a second digit 8-f would make a surrogate (D800-DFFF).
                    if (!isHex(b) || (left == 3 && range == 1 && (b >= '8' && b <= '9' || Character.isLetter(b)))) {
                        return null;
                    }
                    int surrogateRisk = left == 4 && (b == 'd' || b == 'D') ? 1 : 0;
                    return left == 1 ? body(length + 1, below) : new State(new StringFrame(s, HEX, length, left - 1, surrogateRisk), below);
                default:
                    throw new IllegalStateException("string phase " + phase);
            }
        }

        private State body(int len, State below) {
            return new State(new StringFrame(s, BODY, len, 0, 0), below);
        }

        private State utf8(int continuation, int lo, int hi, State below) {
            return new State(new StringFrame(s, UTF8, length, continuation, lo << 8 | hi), below);
        }

        private static boolean isHex(int b) {
            return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
        }
    }

    /** -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — integers without fraction or exponent. */
    static final class NumberFrame extends Frame {
        static final int START = 0, MINUS = 1, ZERO = 2, INT = 3, FRACTION_START = 4, FRACTION = 5, EXPONENT_START = 6,
                EXPONENT_SIGN = 7, EXPONENT = 8;
        static final int MAX_INTEGER_DIGITS = 18, MAX_NUMBER_DIGITS = 15, MAX_EXPONENT_DIGITS = 2;
        final boolean integer;
        final int phase;
        final int digits;   // digits in the current part

        NumberFrame(boolean integer, int phase, int digits) {
            this.integer = integer;
            this.phase = phase;
            this.digits = digits;
        }

        @Override
        List<Object> key(int horizon) {
            return List.of("number", integer, phase, digits);
        }

        @Override
        State feed(int b, State below) {
            boolean digit = b >= '0' && b <= '9';
            int maxInt = integer ? MAX_INTEGER_DIGITS : MAX_NUMBER_DIGITS;
            switch (phase) {
                case START:
                    if (b == '-') {
                        return to(MINUS, 0, below);
                    }
                    // fall through: the first digit
                case MINUS:
                    if (b == '0') {
                        return to(ZERO, 1, below);
                    }
                    return digit ? to(INT, 1, below) : null;
                case ZERO:
                case INT:
                    if (digit && phase == INT && digits < maxInt) {
                        return to(INT, digits + 1, below);
                    }
                    if (!integer && b == '.') {
                        return to(FRACTION_START, 0, below);
                    }
                    if (!integer && (b == 'e' || b == 'E')) {
                        return to(EXPONENT_START, 0, below);
                    }
                    return digit ? null : JsonGrammar.feed(below, b);
                case FRACTION_START:
                    return digit ? to(FRACTION, 1, below) : null;
                case FRACTION:
                    if (digit) {
                        return digits < MAX_NUMBER_DIGITS ? to(FRACTION, digits + 1, below) : null;
                    }
                    if (b == 'e' || b == 'E') {
                        return to(EXPONENT_START, 0, below);
                    }
                    return JsonGrammar.feed(below, b);
                case EXPONENT_START:
                    if (b == '+' || b == '-') {
                        return to(EXPONENT_SIGN, 0, below);
                    }
                    return digit ? to(EXPONENT, 1, below) : null;
                case EXPONENT_SIGN:
                    return digit ? to(EXPONENT, 1, below) : null;
                case EXPONENT:
                    if (digit) {
                        return digits < MAX_EXPONENT_DIGITS ? to(EXPONENT, digits + 1, below) : null;
                    }
                    return JsonGrammar.feed(below, b);
                default:
                    throw new IllegalStateException("number phase " + phase);
            }
        }

        private State to(int newPhase, int newDigits, State below) {
            return new State(new NumberFrame(integer, newPhase, newDigits), below);
        }
    }

    /** {@code [v,v,...]} with between minItems and maxItems items. */
    static final class ArrayFrame extends Frame {
        static final int OPEN = 0, FIRST = 1, AFTER_ITEM = 2;
        final ArrayNode a;
        final int phase;
        final int items;   // items started so far

        ArrayFrame(ArrayNode a, int phase, int items) {
            this.a = a;
            this.phase = phase;
            this.items = items;
        }

        @Override
        List<Object> key(int horizon) {
            return List.of("array", id(a), phase, canonical(items, a.minItems(), a.maxItems(), horizon));
        }

        @Override
        State feed(int b, State below) {
            switch (phase) {
                case OPEN:
                    return b == '[' ? new State(new ArrayFrame(a, FIRST, 0), below) : null;
                case FIRST:
                    if (b == ']') {
                        return a.minItems() == 0 ? below : null;
                    }
                    if (a.maxItems() == 0) {
                        return null;
                    }
                    return JsonGrammar.feed(item(1, below), b);
                case AFTER_ITEM:
                    if (b == ']') {
                        return items >= a.minItems() ? below : null;
                    }
                    return b == ',' && items < a.maxItems() ? item(items + 1, below) : null;
                default:
                    throw new IllegalStateException("array phase " + phase);
            }
        }

        private State item(int count, State below) {
            return new State(initial(a.items()), new State(new ArrayFrame(a, AFTER_ITEM, count), below));
        }
    }
}
