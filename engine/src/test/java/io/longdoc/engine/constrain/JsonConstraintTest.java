package io.longdoc.engine.constrain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.runtime.GenerationResult;
import io.longdoc.engine.runtime.SamplingParams;
import io.longdoc.engine.tokenizer.Shared;
import io.longdoc.engine.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The JSON-schema constrained decoder: the grammar against hand-written texts, random walks whose
 * every output is checked by Jackson and by a schema validator written here independently of the
 * grammar, the trie mask against the slow per-token check, and real decoding with stories260k.
 */
class JsonConstraintTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Schemas chosen to trip a grammar: shared key prefixes, escaped and non-ASCII keys, numeric enums that prefix each other, bounds. */
    static final List<String> ADVERSARIAL = List.of(
            """
            {"type":"object","properties":{"title":{"type":"string"},"year":{"type":"integer"},"score":{"type":"number"},
             "ok":{"type":"boolean"},"tags":{"type":"array","items":{"type":"string"}}},"required":["title","year"]}""",
            """
            {"type":"object","properties":{"a":{"type":"integer"},"ab":{"type":"integer"},"abc":{"type":"string"},"a\\"b":{"type":"boolean"},
             "名前":{"type":"string","maxLength":3}},"required":["abc"]}""",
            """
            {"type":"object","properties":{"n":{"enum":[1,12,123,-4]},"s":{"enum":["x","x\\"y","日本","\\\\"]},"c":{"const":"only"}},
             "required":["n","s","c"]}""",
            """
            {"type":"object","properties":{"none":{"type":"array","items":{"type":"integer"},"maxItems":0},
             "two":{"type":"array","items":{"type":"boolean"},"minItems":2,"maxItems":2},
             "short":{"type":"string","minLength":2,"maxLength":4}},"required":["none","two","short"]}""",
            """
            {"type":"object","properties":{"opt1":{"type":"string"},"opt2":{"type":"number"},"opt3":{"type":"object","properties":{"x":{"type":"integer"}}}}}""",
            """
            {"type":"object","description":"deep","properties":{"rows":{"type":"array","items":{"type":"object","properties":{
             "cells":{"type":"array","items":{"type":"array","items":{"type":"number"}}},"name":{"type":"string"}},"required":["cells"]}}},
             "required":["rows"],"additionalProperties":false}""");

    @Test
    void acceptsValidAndRejectsInvalidTexts() {
        JsonSchema s = JsonSchema.parse(ADVERSARIAL.get(0));
        assertTrue(JsonGrammar.accepts(s, "{\"title\":\"A\",\"year\":1999}"));
        assertTrue(JsonGrammar.accepts(s, "{\"title\":\"\\u00e9\\n\",\"year\":-0,\"score\":1.5e-3,\"ok\":true,\"tags\":[]}"));
        assertTrue(JsonGrammar.accepts(s, "{\"title\":\"été 😀\",\"year\":0,\"tags\":[\"a\",\"b\"]}"));
        assertTrue(JsonGrammar.accepts(s, "{\"title\":\"\\uD55C\\ud7ff\",\"year\":1}"));   // D000-D7FF are characters
        assertFalse(JsonGrammar.accepts(s, "{\"title\":\"\\uDC00\",\"year\":1}"));
        for (String bad : List.of(
                "{\"year\":1999}",                              // required title missing
                "{\"year\":1999,\"title\":\"A\"}",              // out of schema order
                "{\"title\":\"A\",\"year\":1999,\"x\":1}",      // unknown property
                "{\"title\":\"A\", \"year\":1999}",             // whitespace
                "{\"title\":\"A\",\"year\":01}",                // leading zero
                "{\"title\":\"A\",\"year\":1.5}",               // fraction in an integer
                "{\"title\":\"A\",\"year\":1999",               // unclosed
                "{\"title\":\"A\",\"year\":1999}}",             // trailing byte
                "{\"title\":\"\\ud83d\\ude00\",\"year\":1}",     // surrogate escapes
                "{\"title\":\"a\tb\",\"year\":1}",               // raw control character
                "{\"title\":\"A\",\"year\":1234567890123456789}", // 19 digits: not a long
                "{\"title\":\"A\",\"year\":1,\"ok\":tru}",
                "{\"title\":\"A\",\"year\":1,\"tags\":[\"a\",]}",
                "{\"title\":\"A\",\"year\":1,}")) {
            assertFalse(JsonGrammar.accepts(s, bad), bad);
        }
        // Invalid UTF-8 inside a string: an overlong form and a lone continuation byte.
        assertFalse(accepts(s, new byte[] {'{', '"', 't', 'i', 't', 'l', 'e', '"', ':', '"', (byte) 0xC0, (byte) 0xAF, '"'}));
        assertFalse(accepts(s, new byte[] {'{', '"', 't', 'i', 't', 'l', 'e', '"', ':', '"', (byte) 0x80}));

        JsonSchema enums = JsonSchema.parse(ADVERSARIAL.get(2));
        assertTrue(JsonGrammar.accepts(enums, "{\"n\":12,\"s\":\"x\\\"y\",\"c\":\"only\"}"));
        assertTrue(JsonGrammar.accepts(enums, "{\"n\":1,\"s\":\"\\\\\",\"c\":\"only\"}"));
        assertFalse(JsonGrammar.accepts(enums, "{\"n\":124,\"s\":\"x\",\"c\":\"only\"}"));
        assertFalse(JsonGrammar.accepts(enums, "{\"n\":1,\"s\":\"y\",\"c\":\"only\"}"));

        JsonSchema bounds = JsonSchema.parse(ADVERSARIAL.get(3));
        assertTrue(JsonGrammar.accepts(bounds, "{\"none\":[],\"two\":[true,false],\"short\":\"ab\"}"));
        assertFalse(JsonGrammar.accepts(bounds, "{\"none\":[1],\"two\":[true,false],\"short\":\"ab\"}"));
        assertFalse(JsonGrammar.accepts(bounds, "{\"none\":[],\"two\":[true],\"short\":\"ab\"}"));
        assertFalse(JsonGrammar.accepts(bounds, "{\"none\":[],\"two\":[true,false],\"short\":\"abcde\"}"));
        assertFalse(JsonGrammar.accepts(bounds, "{\"none\":[],\"two\":[true,false],\"short\":\"a\"}"));

        assertTrue(JsonGrammar.accepts(JsonSchema.parse(ADVERSARIAL.get(4)), "{}"));
        assertTrue(JsonGrammar.accepts(JsonSchema.parse(ADVERSARIAL.get(4)), "{\"opt2\":3,\"opt3\":{}}"));
    }

    private static boolean accepts(JsonSchema s, byte[] text) {
        JsonGrammar.State st = JsonGrammar.feed(JsonGrammar.start(s), text);
        return st != null && st.isComplete();
    }

    @Test
    void randomWalksThroughTheGrammarAlwaysGiveSchemaValidJson() throws Exception {
        SplittableRandom random = new SplittableRandom(7);
        for (String text : ADVERSARIAL) {
            JsonSchema schema = JsonSchema.parse(text);
            JsonNode schemaNode = JSON.readTree(text);
            for (int walk = 0; walk < 300; walk++) {
                byte[] out = randomWalk(schema, random);
                JsonNode doc = JSON.readTree(new String(out, StandardCharsets.UTF_8));
                String problem = SchemaCheck.problem(schemaNode, doc, "$");
                if (problem != null) {
                    fail(problem + " in " + new String(out, StandardCharsets.UTF_8) + " for schema " + text);
                }
            }
        }
    }

    /** Picks random allowed bytes (closing bytes more often, so walks end) until the text is complete. */
    private static byte[] randomWalk(JsonSchema schema, SplittableRandom random) {
        JsonGrammar.State s = JsonGrammar.start(schema);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int steps = 0; !s.isComplete(); steps++) {
            assertTrue(steps < 100_000, "walk does not end");
            List<Integer> options = new ArrayList<>();
            List<JsonGrammar.State> next = new ArrayList<>();
            for (int b = 0; b < 256; b++) {
                JsonGrammar.State n = JsonGrammar.feed(s, b);
                if (n != null) {
                    int weight = "\"]}".indexOf(b) >= 0 ? 30 : 1;
                    for (int w = 0; w < weight; w++) {
                        options.add(b);
                        next.add(n);
                    }
                }
            }
            assertFalse(options.isEmpty(), "dead end after " + out);
            int pick = random.nextInt(options.size());
            out.write(options.get(pick));
            s = next.get(pick);
        }
        return out.toByteArray();
    }

    @Test
    void trieMaskEqualsTheSlowPerTokenCheck() {
        SplittableRandom random = new SplittableRandom(11);
        byte[][] vocab = syntheticVocab(random);
        TokenTrie trie = new TokenTrie(vocab);
        boolean[] allowed = new boolean[vocab.length];
        for (String text : ADVERSARIAL) {
            JsonSchema schema = JsonSchema.parse(text);
            for (int walk = 0; walk < 20; walk++) {
                byte[] doc = randomWalk(schema, random);
                // Check the mask at every prefix of a valid document.
                JsonGrammar.State s = JsonGrammar.start(schema);
                for (int i = 0; i <= doc.length && !s.isComplete(); i++) {
                    int count = trie.allowed(s, allowed);
                    int slow = 0;
                    for (int id = 0; id < vocab.length; id++) {
                        boolean ok = vocab[id] != null && vocab[id].length > 0 && JsonGrammar.feed(s, vocab[id]) != null;
                        assertEquals(ok, allowed[id], "token " + id);
                        slow += ok ? 1 : 0;
                    }
                    assertEquals(slow, count);
                    // The cached mask (shared by states with the same key) says the same.
                    long[] bits = trie.mask(s);
                    for (int id = 0; id < vocab.length; id++) {
                        assertEquals(allowed[id], (bits[id >>> 6] & (1L << (id & 63))) != 0, "cached mask, token " + id);
                    }
                    if (i < doc.length) {
                        s = JsonGrammar.feed(s, doc[i]);
                    }
                }
            }
        }
    }

    private static final String PIECES = "{}[]\",:0123456789abcdeftrus\\-.";

    @Test
    void masksAreCachedAcrossStatesNoTokenCanTellApart() {
        byte[][] vocab = syntheticVocab(new SplittableRandom(3));
        TokenTrie trie = new TokenTrie(vocab);
        JsonSchema schema = JsonSchema.parse(ADVERSARIAL.get(0));
        JsonGrammar.State s = JsonGrammar.feed(JsonGrammar.start(schema), "{\"title\":\"".getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i < 200; i++) {
            trie.mask(s);
            s = JsonGrammar.feed(s, 'x');
        }
        long[] stats = trie.maskCacheStats();
        // A long unbounded string is one key after its first few characters.
        assertTrue(stats[0] >= 190 && stats[1] <= 10, "hits " + stats[0] + ", misses " + stats[1]);
    }

    /** Every single byte, JSON fragments, and random multi-byte strings (some invalid UTF-8). */
    private static byte[][] syntheticVocab(SplittableRandom random) {
        List<byte[]> v = new ArrayList<>();
        v.add(null);   // a control token
        for (int b = 0; b < 256; b++) {
            v.add(new byte[] {(byte) b});
        }
        for (String f : List.of("{\"", "\":", "\",\"", "\"}", "}}", "]}", "[\"", "true", "false", ",\"a", "12", "123", "1.", "e-", "\\u00",
                "\\\"", "日本", "abc", " {", "{}", "\"title\":\"", "\"year\":")) {
            v.add(f.getBytes(StandardCharsets.UTF_8));
        }
        for (int i = 0; i < 300; i++) {
            byte[] t = new byte[1 + random.nextInt(5)];
            for (int j = 0; j < t.length; j++) {
                t[j] = (byte) (random.nextBoolean() ? PIECES.charAt(random.nextInt(PIECES.length())) : random.nextInt(256));
            }
            v.add(t);
        }
        return v.toArray(new byte[0][]);
    }

    @Test
    void stories260kGeneratesSchemaValidJsonUnderTheMask() throws Exception {
        var model = Shared.require("models/stories260k");
        // Bounded strings and numbers: every path through this schema closes within 300 tokens.
        String text = """
                {"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},
                 "mood":{"enum":["happy","sad"]},"pets":{"type":"array","items":{"type":"string","maxLength":6},"maxItems":3}},
                 "required":["name","age","mood"]}""";
        JsonSchema schema = JsonSchema.parse(text);
        JsonNode schemaNode = JSON.readTree(text);
        try (Engine engine = Engine.load(model, EngineSettings.defaults())) {
            Tokenizer tok = engine.tokenizer();
            TokenTrie trie = new TokenTrie(tok);
            for (int seed = 0; seed < 12; seed++) {
                float temperature = seed == 0 ? 0f : 1f;
                SamplingParams p = new SamplingParams(300, temperature, 0, 1f, 1f, seed, false, new int[0]);
                GenerationResult r = engine.submit(tok.encode("Once upon a time"), p, new JsonConstraint(schema, trie)).get();
                String out = tok.decode(r.contentIds());
                assertEquals("stop", r.finishReason(), out);
                String problem = SchemaCheck.problem(schemaNode, JSON.readTree(out), "$");
                assertEquals(null, problem, out);
            }
        }
    }

    @Test
    void unsupportedSchemasAreRefusedByName() {
        String[] cases = {  // schema, what the error must name
                "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", "root of an extract schema must be of type object",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]}}}", "$.properties.a.type",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x+\"}}}", "$.properties.a.pattern",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/x\"}}}", "$.properties.a: no \"type\"",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"b\"]}", "$.required",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[1,\"x\"]}}}", "$.properties.a.enum",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\"}}}", "needs \"items\"",
                "{\"type\":\"object\",\"properties\":{}}", "no properties",
                "not json", "not valid JSON",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[\"x\"],\"const\":\"y\"}}}", "both const and enum",
                "{\"type\":\"object\",\"properties\":{\"Name\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"}}}", "only in case"};
        for (int c = 0; c < cases.length; c += 2) {
            String schema = cases[c], names = cases[c + 1];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> JsonSchema.parse(schema), schema);
            assertTrue(e.getMessage().contains(names), e.getMessage() + " should name " + names);
        }
        StringBuilder deep = new StringBuilder("{\"type\":\"object\",\"properties\":{\"a\":");
        for (int i = 0; i < 40; i++) {
            deep.append("{\"type\":\"array\",\"items\":");
        }
        deep.append("{\"type\":\"string\"}").append("}".repeat(40)).append("}}");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> JsonSchema.parse(deep.toString())).getMessage().contains("deeper"));
    }

    /** A JSON Schema check for the supported subset, written from the spec rather than from the grammar. */
    static final class SchemaCheck {
        static String problem(JsonNode schema, JsonNode value, String at) {
            if (schema.has("const")) {
                return schema.get("const").equals(value) ? null : at + ": not the const";
            }
            if (schema.has("enum")) {
                for (JsonNode e : schema.get("enum")) {
                    if (e.equals(value)) {
                        return null;
                    }
                }
                return at + ": not one of the enum";
            }
            switch (schema.get("type").asText()) {
                case "object": {
                    if (!value.isObject()) {
                        return at + ": not an object";
                    }
                    for (JsonNode r : schema.path("required")) {
                        if (!value.has(r.asText())) {
                            return at + ": missing " + r.asText();
                        }
                    }
                    for (Iterator<Map.Entry<String, JsonNode>> it = value.fields(); it.hasNext(); ) {
                        Map.Entry<String, JsonNode> f = it.next();
                        JsonNode ps = schema.get("properties").get(f.getKey());
                        if (ps == null) {
                            return at + ": unknown property " + f.getKey();
                        }
                        String p = problem(ps, f.getValue(), at + "." + f.getKey());
                        if (p != null) {
                            return p;
                        }
                    }
                    return null;
                }
                case "string": {
                    if (!value.isTextual()) {
                        return at + ": not a string";
                    }
                    int len = value.asText().codePointCount(0, value.asText().length());
                    if (len < schema.path("minLength").asInt(0) || len > schema.path("maxLength").asInt(Integer.MAX_VALUE)) {
                        return at + ": length " + len;
                    }
                    return null;
                }
                case "integer":
                    return value.isIntegralNumber() && value.canConvertToLong() ? null : at + ": not a long integer";
                case "number":
                    return value.isNumber() && Double.isFinite(value.asDouble()) ? null : at + ": not a finite number";
                case "boolean":
                    return value.isBoolean() ? null : at + ": not a boolean";
                case "array": {
                    if (!value.isArray()) {
                        return at + ": not an array";
                    }
                    if (value.size() < schema.path("minItems").asInt(0) || value.size() > schema.path("maxItems").asInt(Integer.MAX_VALUE)) {
                        return at + ": " + value.size() + " items";
                    }
                    for (int i = 0; i < value.size(); i++) {
                        String p = problem(schema.get("items"), value.get(i), at + "[" + i + "]");
                        if (p != null) {
                            return p;
                        }
                    }
                    return null;
                }
                default:
                    return at + ": unknown type";
            }
        }
    }
}
