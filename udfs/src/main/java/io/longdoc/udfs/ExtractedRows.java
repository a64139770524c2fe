package io.longdoc.udfs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.engine.constrain.JsonSchema;
import io.longdoc.engine.constrain.JsonSchema.ArrayNode;
import io.longdoc.engine.constrain.JsonSchema.BooleanNode;
import io.longdoc.engine.constrain.JsonSchema.EnumNode;
import io.longdoc.engine.constrain.JsonSchema.Node;
import io.longdoc.engine.constrain.JsonSchema.NumberNode;
import io.longdoc.engine.constrain.JsonSchema.ObjectNode;
import io.longdoc.engine.constrain.JsonSchema.Property;
import io.longdoc.engine.constrain.JsonSchema.StringNode;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The {@code extracted} column: a Spark type derived from the JSON schema (object → struct with
 * the properties in schema order, string and string enums → string, integer and integer enums →
 * bigint, number → double, boolean → boolean, array → array), and the conversion of a generated
 * JSON text into a value of that type. Properties left out of the JSON are null.
 */
public final class ExtractedRows {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ExtractedRows() {
    }

    public static StructType structType(JsonSchema schema) {
        return (StructType) sparkType(schema.root());
    }

    static DataType sparkType(Node n) {
        if (n instanceof ObjectNode o) {
            StructType t = new StructType();
            for (Property p : o.properties()) {
                t = t.add(p.name(), sparkType(p.schema()), true);
            }
            return t;
        } else if (n instanceof StringNode) {
            return DataTypes.StringType;
        } else if (n instanceof EnumNode e) {
            return e.integers() ? DataTypes.LongType : DataTypes.StringType;
        } else if (n instanceof NumberNode num) {
            return num.integer() ? DataTypes.LongType : DataTypes.DoubleType;
        } else if (n instanceof BooleanNode) {
            return DataTypes.BooleanType;
        } else if (n instanceof ArrayNode a) {
            return DataTypes.createArrayType(sparkType(a.items()), true);
        }
        throw new IllegalArgumentException("schema node " + n);
    }

    /** The struct value of a generated JSON text; throws with the place when the text does not fit the schema. */
    public static Row parse(JsonSchema schema, String json) {
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("output is not JSON: " + e.getMessage());
        }
        return (Row) value(schema.root(), node, "$");
    }

    private static Object value(Node n, JsonNode v, String at) {
        if (v == null || v.isNull()) {
            return null;
        }
        if (n instanceof ObjectNode o) {
            if (!v.isObject()) {
                throw new IllegalArgumentException(at + ": expected an object");
            }
            Object[] fields = new Object[o.properties().size()];
            for (int i = 0; i < fields.length; i++) {
                Property p = o.properties().get(i);
                fields[i] = value(p.schema(), v.get(p.name()), at + "." + p.name());
            }
            return RowFactory.create(fields);
        } else if (n instanceof StringNode || (n instanceof EnumNode e && !e.integers())) {
            if (!v.isTextual()) {
                throw new IllegalArgumentException(at + ": expected a string");
            }
            return v.asText();
        } else if (n instanceof EnumNode || (n instanceof NumberNode num && num.integer())) {
            if (!v.isIntegralNumber() || !v.canConvertToLong()) {
                throw new IllegalArgumentException(at + ": expected an integer");
            }
            return v.asLong();
        } else if (n instanceof NumberNode) {
            if (!v.isNumber()) {
                throw new IllegalArgumentException(at + ": expected a number");
            }
            return v.asDouble();
        } else if (n instanceof BooleanNode) {
            if (!v.isBoolean()) {
                throw new IllegalArgumentException(at + ": expected a boolean");
            }
            return v.asBoolean();
        } else if (n instanceof ArrayNode a) {
            if (!v.isArray()) {
                throw new IllegalArgumentException(at + ": expected an array");
            }
            List<Object> items = new ArrayList<>();
            for (int i = 0; i < v.size(); i++) {
                items.add(value(a.items(), v.get(i), at + "[" + i + "]"));
            }
            return scala.jdk.javaapi.CollectionConverters.asScala(items).toSeq();
        }
        throw new IllegalArgumentException("schema node " + n);
    }
}
