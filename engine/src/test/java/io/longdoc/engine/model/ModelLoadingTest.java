package io.longdoc.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import io.longdoc.engine.tokenizer.Shared;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Loading real and damaged model directories: clear errors naming file and tensor, never code execution. */
class ModelLoadingTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private Path copyModel(String name) throws Exception {
        Path src = Shared.require("models/" + name);
        Path dst = Files.createDirectories(tmp.resolve(name));
        try (var files = Files.list(src)) {
            for (Path f : files.toList()) {
                Files.copy(f, dst.resolve(f.getFileName()));
            }
        }
        return dst;
    }

    private static String loadError(Path dir) {
        return assertThrows(ModelFormatException.class, () -> new LlamaWeights(ModelConfig.load(dir), Weights.open(dir))).getMessage();
    }

    @Test
    void truncatedSafetensorsNamesFileAndTensor() throws Exception {
        Path dir = copyModel("stories260k");
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 1000));
        String msg = loadError(dir);
        assertTrue(msg.contains("model.safetensors") && msg.contains("tensor ") && msg.contains("past the end"), msg);
    }

    @Test
    void badHeaderLengthIsRefused() throws Exception {
        Path dir = copyModel("stories260k");
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        Files.write(file, bytes);
        assertTrue(loadError(dir).contains("bad header length"));
        Files.write(file, new byte[3]);
        assertTrue(loadError(dir).contains("too short"));
    }

    @Test
    void shapeDtypeMismatchAliasedOffsetsAndMissingTensorAreRefused() throws Exception {
        Path dir = copyModel("stories260k");
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        long headerLen = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8);
        ObjectNode h = (ObjectNode) JSON.readTree(header);

        ObjectNode wrongShape = h.deepCopy();
        ((ObjectNode) wrongShape.get("model.norm.weight")).putArray("shape").add(32).add(2);
        writeWithHeader(file, bytes, headerLen, wrongShape);
        String msg = loadError(dir);
        assertTrue(msg.contains("model.norm.weight") && msg.contains("shape"), msg);

        ObjectNode wrongDtype = h.deepCopy();
        ((ObjectNode) wrongDtype.get("model.norm.weight")).put("dtype", "F16");
        writeWithHeader(file, bytes, headerLen, wrongDtype);
        msg = loadError(dir);
        assertTrue(msg.contains("model.norm.weight") && msg.contains("bytes"), msg);

        // Layer 1's norm pointed at layer 0's bytes: refused, not read as a copy of them.
        ObjectNode aliased = h.deepCopy();
        ((ObjectNode) aliased.get("model.layers.1.input_layernorm.weight")).set("data_offsets",
                h.get("model.layers.0.input_layernorm.weight").get("data_offsets").deepCopy());
        writeWithHeader(file, bytes, headerLen, aliased);
        msg = loadError(dir);
        assertTrue(msg.contains("model.layers.1.input_layernorm.weight") && msg.contains("overlapping data_offsets"), msg);

        ObjectNode fractional = h.deepCopy();
        com.fasterxml.jackson.databind.node.ArrayNode offsets = ((ObjectNode) fractional.get("model.norm.weight")).putArray("data_offsets");
        offsets.add(h.get("model.norm.weight").get("data_offsets").get(0).asLong() + 0.5).add(h.get("model.norm.weight").get("data_offsets").get(1).asLong());
        writeWithHeader(file, bytes, headerLen, fractional);
        msg = loadError(dir);
        assertTrue(msg.contains("model.norm.weight") && msg.contains("not whole numbers"), msg);

        ObjectNode missing = h.deepCopy();
        missing.remove("model.layers.3.mlp.up_proj.weight");
        writeWithHeader(file, bytes, headerLen, missing);
        msg = loadError(dir);
        assertTrue(msg.contains("model.layers.3.mlp.up_proj.weight") && msg.contains("missing"), msg);
    }

    private static void writeWithHeader(Path file, byte[] original, long headerLen, ObjectNode header) throws Exception {
        byte[] h = JSON.writeValueAsBytes(header);
        byte[] padded = Arrays.copyOf(h, (int) headerLen);
        Arrays.fill(padded, h.length, padded.length, (byte) ' ');
        if (h.length > headerLen) {
            throw new IllegalStateException("test header grew");
        }
        byte[] out = original.clone();
        System.arraycopy(padded, 0, out, 8, padded.length);
        Files.write(file, out);
    }

    @Test
    void unknownArchitecturesAndUnimplementedKeysAreRefused() throws Exception {
        Path dir = copyModel("stories260k");
        Path config = dir.resolve("config.json");
        ObjectNode c = (ObjectNode) JSON.readTree(config.toFile());
        for (String[] change : new String[][] {
            {"architectures", "[\"GPTNeoXForCausalLM\"]", "not supported"},
            {"attention_bias", "true", "attention_bias"},
            {"hidden_act", "\"gelu\"", "hidden_act"},
            {"rope_scaling", "{\"type\":\"yarn\",\"factor\":4}", "yarn"},
            {"quantization_config", "{\"quant_method\":\"gptq\"}", "quantization_config"},
            {"mlp_bias", "true", "mlp_bias"},
            {"partial_rotary_factor", "0.5", "partial_rotary_factor"},
            {"rope_interleaved", "true", "interleaved RoPE"},
            {"num_key_value_heads", "3", "not a multiple of num_key_value_heads"},
            {"head_dim", "7", "head_dim 7 must be even"},
            {"hidden_size", "0", "'hidden_size' is missing or not a positive integer"},
            {"rope_scaling", "{\"type\":\"linear\"}", "rope_scaling 'linear' needs a number 'factor'"},
            {"rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4}",
                "'original_max_position_embeddings'"},
        }) {
            ObjectNode bad = c.deepCopy();
            bad.set(change[0], JSON.readTree(change[1]));
            Files.writeString(config, JSON.writeValueAsString(bad));
            String msg = assertThrows(ModelFormatException.class, () -> ModelConfig.load(dir)).getMessage();
            assertTrue(msg.contains(change[2]) && msg.contains("config.json"), msg);
        }
    }

    @Test
    void swishIsSiluAndUnimplementedGenerationSettingsAreNamed() throws Exception {
        Path dir = copyModel("stories260k");
        Path config = dir.resolve("config.json");
        ObjectNode c = (ObjectNode) JSON.readTree(config.toFile());
        c.put("hidden_act", "swish");
        Files.writeString(config, JSON.writeValueAsString(c));
        assertTrue(ModelConfig.load(dir).layers() > 0);

        JsonNode gen = JSON.readTree("{\"do_sample\":true,\"num_beams\":1,\"min_new_tokens\":5,\"no_repeat_ngram_size\":0,"
                + "\"typical_p\":0.9,\"suppress_tokens\":[],\"bad_words_ids\":[[7]],\"top_k\":20}");
        assertEquals(List.of("min_new_tokens=5", "typical_p=0.9", "bad_words_ids=[[7]]"), ModelConfig.unimplementedGenerationSettings(gen));
        assertEquals(List.of(), ModelConfig.unimplementedGenerationSettings(JSON.readTree("{\"num_beams\":1,\"min_length\":0,\"typical_p\":1.0}")));
    }

    /**
     * "like-torch" adds what torch.save writes beyond a plain pickle of tensors: the state dict's
     * _metadata (a BUILD), tensors at offsets inside one shared storage, 64-byte-aligned records
     * behind padded local headers, ZIP64 extra fields and the archive/ prefix.
     */
    @ParameterizedTest
    @ValueSource(strings = {"plain", "like-torch"})
    void torchCheckpointLoadsTheSameTensors(String layout) throws Exception {
        Path src = Shared.require("models/index-tiny-random");
        Path bin = tmp.resolve("index-bin-" + layout);
        if (layout.equals("plain")) {
            python("make_torch_bin.py", src.toString(), bin.toString());
        } else {
            python("make_torch_bin.py", src.toString(), bin.toString(), "--like-torch");
        }
        Files.copy(src.resolve("tokenizer.model"), bin.resolve("tokenizer.model"));
        int[] ids = {5, 77, 300, 12, 9, 480};
        try (Engine a = Engine.load(src, EngineSettings.defaults()); Engine b = Engine.load(bin, EngineSettings.defaults())) {
            float[][] la = a.score(ids, new int[] {5});
            float[][] lb = b.score(ids, new int[] {5});
            assertArrayEquals(la[0], lb[0]);
        }
        assertTrue(Weights.open(bin).source().endsWith("pytorch_model.bin"));
    }

    /** Three shards and model.safetensors.index.json, as Hugging Face writes large models: the float64 reference's logits. */
    @Test
    void shardedSafetensorsLoadAndMissingPiecesAreNamed() throws Exception {
        Path src = Shared.require("models/index-tiny-random");
        Path sharded = tmp.resolve("sharded");
        python("make_shards.py", src.toString(), sharded.toString(), "3");
        assertTrue(Weights.open(sharded).source().endsWith("model.safetensors.index.json"));
        io.longdoc.engine.runtime.IndexTinyRandomTest.assertLogitsEqualTheReference(sharded);
        // A shard the index names but the directory lacks, and a tensor the index places in the wrong shard.
        Path shard2 = sharded.resolve("model-00002-of-00003.safetensors");
        Path moved = tmp.resolve("moved.safetensors");
        Files.move(shard2, moved);
        String missing = assertThrows(ModelFormatException.class, () -> Weights.open(sharded)).getMessage();
        assertTrue(missing.contains("model-00002-of-00003.safetensors") && missing.contains("missing"), missing);
        Files.move(moved, shard2);
        Path index = sharded.resolve("model.safetensors.index.json");
        ObjectNode root = (ObjectNode) JSON.readTree(index.toFile());
        ObjectNode map = (ObjectNode) root.get("weight_map");
        String name = map.fieldNames().next();
        String wrong = map.get(name).asText().equals("model-00001-of-00003.safetensors") ? "model-00002-of-00003.safetensors" : "model-00001-of-00003.safetensors";
        map.put(name, wrong);
        Files.writeString(index, JSON.writeValueAsString(root));
        String misplaced = assertThrows(ModelFormatException.class, () -> Weights.open(sharded)).getMessage();
        assertTrue(misplaced.contains(name) && misplaced.contains(wrong), misplaced);
    }

    /**
     * Weights stay in the mapped file: loading a 110 MB F32 model and running it (every weight read)
     * grows the heap by a small fraction of that; a copy of the weights would add all of it.
     */
    @Test
    void theHeapDoesNotHoldTheWeights() throws Exception {
        Path dir = tmp.resolve("random-110mb");
        String config = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":512,\"intermediate_size\":1408,\"num_hidden_layers\":6,"
                + "\"num_attention_heads\":8,\"vocab_size\":8000,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-5}";
        python("make_random_model.py", dir.toString(), config, "F32", "7");
        long weightBytes = Files.size(dir.resolve("model.safetensors"));
        assertTrue(weightBytes > 100L << 20, "model of " + weightBytes + " bytes");
        long before = usedHeapAfterGc();
        try (Engine engine = Engine.load(dir, EngineSettings.defaults().withKvCacheBytes(1 << 20).withThreads(1))) {
            float[] logits = engine.score(new int[] {1, 50, 700, 4000}, new int[] {3})[0];
            assertTrue(Float.isFinite(logits[0]));
            long grown = usedHeapAfterGc() - before;
            assertTrue(grown < weightBytes / 8, "the heap grew by " + (grown >> 20) + " MB for " + (weightBytes >> 20) + " MB of weights");
        }
    }

    private static long usedHeapAfterGc() {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    /** tie_word_embeddings: the embedding is the head even when the checkpoint also carries an lm_head.weight (here all zeros). */
    @Test
    void aTiedModelUsesItsEmbeddingAsTheHead() throws Exception {
        Path src = Shared.require("models/stories260k");   // tie_word_embeddings: true, no lm_head.weight
        Path stray = tmp.resolve("stories-stray-head");
        python("add_tensor.py", src.toString(), stray.toString(), "lm_head.weight", "512", "64");
        int[] ids = {1, 403, 407, 261};
        try (Engine a = Engine.load(src, EngineSettings.defaults()); Engine b = Engine.load(stray, EngineSettings.defaults())) {
            float[] expected = a.score(ids, new int[] {3})[0];
            assertArrayEquals(expected, b.score(ids, new int[] {3})[0]);
            assertTrue(Arrays.stream(new int[] {0, 1, 2}).anyMatch(i -> expected[i] != 0f), "the head is not the zeros");
        }
    }

    @Test
    void pickleWithAForeignGlobalIsRefusedAndNothingRuns() throws Exception {
        Path src = Shared.require("models/index-tiny-random");
        Path bin = tmp.resolve("evil-bin");
        Path marker = tmp.resolve("pwned");
        python("make_torch_bin.py", src.toString(), bin.toString(), "--evil", marker.toString());
        String msg = assertThrows(ModelFormatException.class, () -> Weights.open(bin)).getMessage();
        assertTrue(msg.contains("refused global") && (msg.contains("posix.system") || msg.contains("os.system")), msg);
        assertFalse(Files.exists(marker), "the pickle's payload must never run");

        // Truncated zip: a clear error.
        Path cut = Files.createDirectories(tmp.resolve("cut-bin"));
        Files.copy(src.resolve("config.json"), cut.resolve("config.json"));
        Path good = tmp.resolve("good-bin");
        python("make_torch_bin.py", src.toString(), good.toString());
        byte[] bytes = Files.readAllBytes(good.resolve("pytorch_model.bin"));
        Files.write(cut.resolve("pytorch_model.bin"), Arrays.copyOf(bytes, bytes.length / 2));
        assertTrue(assertThrows(ModelFormatException.class, () -> Weights.open(cut)).getMessage().contains("pytorch_model.bin"));

        // A storage with half the bytes its tensor's shape needs: named, file and tensor.
        Path shortStorage = tmp.resolve("short-bin");
        python("make_torch_bin.py", src.toString(), shortStorage.toString(), "--cut-storage", "model.layers.1.mlp.up_proj.weight");
        String msg2 = assertThrows(ModelFormatException.class, () -> Weights.open(shortStorage)).getMessage();
        assertTrue(msg2.contains("pytorch_model.bin") && msg2.contains("model.layers.1.mlp.up_proj.weight") && msg2.contains("past the end"), msg2);
    }

    /**
     * Storage records whose declared type, size, offset or strides do not match their bytes, and
     * an archive written big-endian: each refused with a message naming the file and what is wrong,
     * none read as if it were right (a HalfStorage over F32 bytes would load as garbage).
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource(delimiter = '|', value = {
        "wrong-type   | elements take",
        "huge-offset  | too large to address",
        "huge-numel   | too large to address",
        "short-stride | dimensions but",
        "big-endian   | only little-endian is read",
    })
    void torchCheckpointRecordsThatDoNotMatchTheirBytesAreRefused(String kind, String expected) throws Exception {
        Path src = Shared.require("models/index-tiny-random");
        Path bin = tmp.resolve("damaged-bin-" + kind.trim());
        python("make_torch_bin.py", src.toString(), bin.toString(), "--corrupt", kind.trim());
        String msg = assertThrows(ModelFormatException.class, () -> Weights.open(bin)).getMessage();
        assertTrue(msg.contains("pytorch_model.bin") && msg.contains(expected.trim()), msg);
        if (!kind.trim().equals("big-endian")) {
            assertTrue(msg.contains("model.layers.1.mlp.up_proj.weight"), msg);
        }
    }

    private void python(String script, String... args) throws Exception {
        io.longdoc.engine.tokenizer.SentencePieceReference.requireAvailable();
        Path s = tmp.resolve(script);
        try (var in = ModelLoadingTest.class.getResourceAsStream("/" + script)) {
            Files.copy(in, s, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        String[] cmd = new String[args.length + 2];
        cmd[0] = "/usr/bin/python3";
        cmd[1] = s.toString();
        System.arraycopy(args, 0, cmd, 2, args.length);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(2, TimeUnit.MINUTES) && p.exitValue() == 0, out);
    }
}
