package io.longdoc.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * All weight tensors of a model directory, by name: {@code model.safetensors}, sharded
 * safetensors with {@code model.safetensors.index.json}, or {@code pytorch_model.bin}.
 */
public final class Weights {
    private final Map<String, Tensor> tensors;
    private final String source;

    private Weights(Map<String, Tensor> tensors, String source) {
        this.tensors = tensors;
        this.source = source;
    }

    public static Weights open(Path modelDir) {
        Path single = modelDir.resolve("model.safetensors");
        Path index = modelDir.resolve("model.safetensors.index.json");
        Path bin = modelDir.resolve("pytorch_model.bin");
        if (Files.isRegularFile(single)) {
            return new Weights(SafeTensors.open(single), single.toString());
        }
        if (Files.isRegularFile(index)) {
            JsonNode root = ModelConfig.readJson(index);
            JsonNode map = root.path("weight_map");
            if (!map.isObject() || map.isEmpty()) {
                throw new ModelFormatException(index + ": no weight_map");
            }
            TreeSet<String> shards = new TreeSet<>();
            Map<String, String> shardOf = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String shard = e.getValue().asText();
                if (shard.contains("/") || shard.contains("..")) {
                    throw new ModelFormatException(index + ": shard name '" + shard + "' must be a file in the model directory");
                }
                shards.add(shard);
                shardOf.put(e.getKey(), shard);
            }
            Map<String, Tensor> all = new LinkedHashMap<>();
            for (String shard : shards) {
                Path f = modelDir.resolve(shard);
                if (!Files.isRegularFile(f)) {
                    throw new ModelFormatException(index + " names shard " + shard + ", which is missing");
                }
                for (Map.Entry<String, Tensor> e : SafeTensors.open(f).entrySet()) {
                    if (shard.equals(shardOf.get(e.getKey()))) {
                        all.put(e.getKey(), e.getValue());
                    }
                }
            }
            for (Map.Entry<String, String> e : shardOf.entrySet()) {
                if (!all.containsKey(e.getKey())) {
                    throw new ModelFormatException(modelDir.resolve(e.getValue()) + ": tensor " + e.getKey() + " listed in the index is missing");
                }
            }
            return new Weights(all, index.toString());
        }
        if (Files.isRegularFile(bin)) {
            return new Weights(TorchCheckpoint.open(bin), bin.toString());
        }
        throw new ModelFormatException("model directory " + modelDir + " has no weights (model.safetensors, model.safetensors.index.json or pytorch_model.bin)");
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new ModelFormatException(source + ": tensor " + name + " is missing");
        }
        return t;
    }

    public String source() {
        return source;
    }

    public Map<String, Tensor> all() {
        return tensors;
    }
}
