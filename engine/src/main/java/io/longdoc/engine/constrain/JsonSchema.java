package io.longdoc.engine.constrain;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The part of JSON Schema the extract task supports, parsed into a tree that the grammar walks:
 * an object at the root; properties of type string, number, integer, boolean, enum (or const),
 * array (with items) and nested object; required fields. Keywords that would restrict values in a
 * way the decoder does not enforce (pattern, minimum, anyOf, $ref, ...) are refused with an error
 * naming their place, so no output can be "valid for the schema" only by accident. Annotations
 * (title, description, examples, ...) are ignored.
 */
public final class JsonSchema implements Serializable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "examples", "default", "$schema", "$id", "$comment");
    /** Deepest nesting of objects and arrays accepted; deeper schemas are refused rather than risk the stack. */
    static final int MAX_DEPTH = 32;

    /** A node of the schema tree. */
    public sealed interface Node extends Serializable permits ObjectNode, StringNode, NumberNode, BooleanNode, EnumNode, ArrayNode {
    }

    /** A property of an object, in the schema's order (which is the order the decoder writes them in). */
    public record Property(String name, Node schema, boolean required) implements Serializable {
    }

    /** keys: each property's {@code "name":} as JSON-escaped UTF-8, what the decoder writes before its value. */
    public record ObjectNode(List<Property> properties, byte[][] keys) implements Node {
    }

    public record StringNode(int minLength, int maxLength) implements Node {
    }

    /** {@code integer} (a JSON integer that fits a long) or {@code number}. */
    public record NumberNode(boolean integer) implements Node {
    }

    public record BooleanNode() implements Node {
    }

    /** Enum values, each as it is written in JSON (and as UTF-8 bytes); all strings or all integers. */
    public record EnumNode(List<String> literals, boolean integers, byte[][] literalBytes) implements Node {
    }

    public record ArrayNode(Node items, int minItems, int maxItems) implements Node {
    }

    private final ObjectNode root;
    private final String text;

    private JsonSchema(ObjectNode root, String text) {
        this.root = root;
        this.text = text;
    }

    public ObjectNode root() {
        return root;
    }

    /** The schema as compact JSON (what the extract templates show the model). */
    public String text() {
        return text;
    }

    public static JsonSchema load(Path file) {
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read JSON schema " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    public static JsonSchema parse(String json) {
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("the schema is not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("the schema must be a JSON object");
        }
        Node root = node(node, "$", 0);
        if (!(root instanceof ObjectNode o)) {
            throw new IllegalArgumentException("$: the root of an extract schema must be of type object");
        }
        if (o.properties().isEmpty()) {
            throw new IllegalArgumentException("$: the root object has no properties to extract");
        }
        try {
            return new JsonSchema(o, JSON.writeValueAsString(node));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Node node(JsonNode s, String at, int depth) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException(at + ": nested deeper than " + MAX_DEPTH + " levels");
        }
        if (!s.isObject()) {
            throw new IllegalArgumentException(at + ": a schema must be a JSON object, not " + s.getNodeType().name().toLowerCase());
        }
        Set<String> used = new HashSet<>(ANNOTATIONS);
        Node result;
        if (s.has("enum") || s.has("const")) {
            used.addAll(List.of("enum", "const", "type"));
            result = enumNode(s, at);
        } else {
            JsonNode type = s.get("type");
            if (type == null) {
                throw new IllegalArgumentException(at + ": no \"type\" (one of object, string, number, integer, boolean, array) and no enum");
            }
            if (!type.isTextual()) {
                throw new IllegalArgumentException(at + ".type: must be a single type name; unions like " + type + " are not supported");
            }
            used.add("type");
            result = switch (type.asText()) {
                case "object" -> {
                    used.addAll(List.of("properties", "required", "additionalProperties"));
                    yield objectNode(s, at, depth);
                }
                case "string" -> {
                    used.addAll(List.of("minLength", "maxLength"));
                    int min = count(s, "minLength", at, 0);
                    int max = count(s, "maxLength", at, Integer.MAX_VALUE);
                    if (min > max) {
                        throw new IllegalArgumentException(at + ": minLength " + min + " is above maxLength " + max);
                    }
                    yield new StringNode(min, max);
                }
                case "number" -> new NumberNode(false);
                case "integer" -> new NumberNode(true);
                case "boolean" -> new BooleanNode();
                case "array" -> {
                    used.addAll(List.of("items", "minItems", "maxItems"));
                    JsonNode items = s.get("items");
                    if (items == null) {
                        throw new IllegalArgumentException(at + ": an array needs \"items\"");
                    }
                    int min = count(s, "minItems", at, 0);
                    int max = count(s, "maxItems", at, Integer.MAX_VALUE);
                    if (min > max) {
                        throw new IllegalArgumentException(at + ": minItems " + min + " is above maxItems " + max);
                    }
                    yield new ArrayNode(node(items, at + ".items", depth + 1), min, max);
                }
                default -> throw new IllegalArgumentException(at + ".type: '" + type.asText()
                        + "' is not supported (object, string, number, integer, boolean, array, or an enum)");
            };
        }
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!used.contains(key)) {
                throw new IllegalArgumentException(at + "." + key + ": keyword not supported by the constrained decoder");
            }
        }
        return result;
    }

    private static ObjectNode objectNode(JsonNode s, String at, int depth) {
        JsonNode props = s.get("properties");
        if (props == null || !props.isObject()) {
            throw new IllegalArgumentException(at + ": an object needs \"properties\" (an object)");
        }
        Set<String> required = new HashSet<>();
        JsonNode req = s.get("required");
        if (req != null) {
            if (!req.isArray()) {
                throw new IllegalArgumentException(at + ".required: must be an array of property names");
            }
            for (JsonNode r : req) {
                if (!r.isTextual() || !props.has(r.asText())) {
                    throw new IllegalArgumentException(at + ".required: " + r + " is not one of the properties");
                }
                required.add(r.asText());
            }
        }
        JsonNode additional = s.get("additionalProperties");
        if (additional != null && !additional.isBoolean()) {
            throw new IllegalArgumentException(at + ".additionalProperties: only true or false is supported");
        }
        List<Property> list = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = props.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().isEmpty()) {
                throw new IllegalArgumentException(at + ".properties: an empty property name is not supported");
            }
            list.add(new Property(e.getKey(), node(e.getValue(), at + ".properties." + e.getKey(), depth + 1), required.contains(e.getKey())));
        }
        Set<String> lowerCase = new HashSet<>();
        for (Property p : list) {
            if (!lowerCase.add(p.name().toLowerCase(java.util.Locale.ROOT))) {
                throw new IllegalArgumentException(at + ".properties: '" + p.name()
                        + "' differs from another property only in case, which one Spark struct cannot hold");
            }
        }
        byte[][] keys = new byte[list.size()][];
        for (int i = 0; i < keys.length; i++) {
            try {
                keys[i] = (JSON.writeValueAsString(list.get(i).name()) + ":").getBytes(StandardCharsets.UTF_8);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
        return new ObjectNode(List.copyOf(list), keys);
    }

    private static EnumNode enumNode(JsonNode s, String at) {
        List<JsonNode> values = new ArrayList<>();
        if (s.has("const") && s.has("enum")) {
            throw new IllegalArgumentException(at + ": both const and enum; use one of them");
        }
        if (s.has("const")) {
            values.add(s.get("const"));
        } else {
            JsonNode e = s.get("enum");
            if (!e.isArray() || e.isEmpty()) {
                throw new IllegalArgumentException(at + ".enum: must be a non-empty array");
            }
            e.forEach(values::add);
        }
        boolean strings = values.stream().allMatch(JsonNode::isTextual);
        boolean integers = values.stream().allMatch(v -> v.isIntegralNumber() && v.canConvertToLong());
        if (!strings && !integers) {
            throw new IllegalArgumentException(at + ".enum: values must be all strings or all integers");
        }
        JsonNode type = s.get("type");
        if (type != null && !type.asText().equals(strings ? "string" : "integer")) {
            throw new IllegalArgumentException(at + ".type: '" + type.asText() + "' does not match the enum's values");
        }
        List<String> literals = new ArrayList<>();
        for (JsonNode v : values) {
            String literal = v.toString();
            if (!literals.contains(literal)) {
                literals.add(literal);
            }
        }
        byte[][] bytes = new byte[literals.size()][];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = literals.get(i).getBytes(StandardCharsets.UTF_8);
        }
        return new EnumNode(List.copyOf(literals), !strings, bytes);
    }

    private static int count(JsonNode s, String key, String at, int absent) {
        JsonNode v = s.get(key);
        if (v == null) {
            return absent;
        }
        if (!v.isIntegralNumber() || v.asLong() < 0 || v.asLong() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(at + "." + key + ": must be a non-negative integer");
        }
        return v.asInt();
    }
}
