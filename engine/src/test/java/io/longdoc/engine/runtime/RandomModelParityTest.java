package io.longdoc.engine.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.longdoc.engine.tokenizer.SentencePieceReference;
import io.longdoc.engine.tokenizer.Shared;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Random models made here with numpy, checked against ../shared/tools/hf_llama_ref.py (an
 * independent float64 forward pass): GQA ratios 1/2/4, F32/F16/BF16 weights, tied and separate
 * heads, a head_dim other than hidden_size / heads, a LLaMA config's sliding_window ignored (as
 * Hugging Face's LLaMA does), and RoPE past 8K positions with linear, dynamic NTK and llama3 scaling.
 */
class RandomModelParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    static Path script(String name) throws Exception {
        Path p = tmp.resolve(name);
        try (InputStream in = RandomModelParityTest.class.getResourceAsStream("/" + name)) {
            Files.copy(in, p, StandardCopyOption.REPLACE_EXISTING);
        }
        return p;
    }

    static String python(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("python timed out: " + cmd);
        }
        assertEquals(0, p.exitValue(), "python failed: " + cmd);
        return out;
    }

    static void requireNumpy() throws Exception {
        SentencePieceReference.requireAvailable(); // the same Debian python; numpy is installed beside it by .ci/run
        Process p = new ProcessBuilder("/usr/bin/python3", "-c", "import numpy").start();
        boolean ok = p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        if (!ok && "true".equals(System.getenv("CI"))) {
            throw new AssertionError("python3-numpy is not installed; .ci/run installs it");
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(ok, "skipped: python3-numpy is not installed");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "mha-f32      | F32  | 37   | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":4,\"vocab_size\":300,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":false}",
        "gqa2-f16     | F16  | 41   | {\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":300,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-5,\"rope_theta\":1000000.0,\"tie_word_embeddings\":false}",
        "gqa4-bf16-tied | BF16 | 29 | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":80,\"num_hidden_layers\":2,\"num_attention_heads\":8,\"num_key_value_heads\":2,\"vocab_size\":300,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-6,\"tie_word_embeddings\":true}",
        "index-gqa2-bf16 | BF16 | 33 | {\"architectures\":[\"IndexForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":300,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-6,\"norm_head\":1,\"rope_ratio\":32}",
        "head-dim-32  | F32  | 31   | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":32,\"vocab_size\":300,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":false}",
        "llama-ignores-sliding-window | F32 | 40 | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":300,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-5,\"sliding_window\":8,\"tie_word_embeddings\":false}",
        "rope-8k-plain | BF16 | 8300 | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":200,\"max_position_embeddings\":16384,\"rms_norm_eps\":1e-5}",
        "rope-8k-linear | F16 | 8300 | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":2,\"vocab_size\":200,\"max_position_embeddings\":4096,\"rms_norm_eps\":1e-5,\"rope_scaling\":{\"type\":\"linear\",\"factor\":4.0}}",
        "rope-8k-dynamic | BF16 | 8300 | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":200,\"max_position_embeddings\":4096,\"rms_norm_eps\":1e-5,\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":4.0}}",
        "rope-8k-llama3 | BF16 | 8300 | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":200,\"max_position_embeddings\":16384,\"rms_norm_eps\":1e-5,\"rope_theta\":500000.0,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":2048}}",
    })
    void lastPositionLogitsMatchTheFloat64Reference(String name, String dtype, int tokens, String config) throws Exception {
        assertLastLogitsMatchTheReference(name.trim(), dtype, tokens, config, EngineSettings.defaults(), 1e-4);
    }

    /**
     * Writes the random model, scores {@code tokens} random ids with the engine and with the
     * float64 reference, and compares the last position's logits within {@code tolerance} of the largest.
     */
    private void assertLastLogitsMatchTheReference(String name, String dtype, int tokens, String config, EngineSettings settings,
            double tolerance) throws Exception {
        requireNumpy();
        Path reference = Shared.require("tools/hf_llama_ref.py");
        Path dir = tmp.resolve(name + "-" + settings.kvCacheType());
        python(script("make_random_model.py").toString(), dir.toString(), config, dtype.trim(), String.valueOf(name.hashCode() & 0xFFFF));
        int vocab = JSON.readTree(config).get("vocab_size").asInt();
        Random random = new Random(tokens);
        int[] ids = new int[tokens];
        List<String> args = new ArrayList<>(List.of(reference.toString(), dir.toString(), "logits"));
        for (int i = 0; i < tokens; i++) {
            ids[i] = random.nextInt(vocab);
            args.add(String.valueOf(ids[i]));
        }
        double[] expected = JSON.readValue(python(args.toArray(new String[0])), double[].class);
        try (Engine engine = Engine.load(dir, settings)) {
            float[] actual = engine.score(ids, new int[] {tokens - 1})[0];
            IndexTinyRandomTest.assertClose(expected, actual, tolerance, name + ", " + settings.kvCacheType() + " KV cache");
        }
    }

    /**
     * A BF16 KV cache (longdoc.engine.kv-cache-type = bf16) against the float64 reference, which
     * keeps keys and values exact: BF16 keeps 8 bits of each, so the tolerance is looser than the
     * FP32 cache's 1e-4 (measured 1.5e-3 and 6.3e-4 of the largest logit).
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "index-gqa2-bf16 | BF16 | 33 | {\"architectures\":[\"IndexForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":300,\"max_position_embeddings\":512,\"rms_norm_eps\":1e-6,\"norm_head\":1,\"rope_ratio\":32}",
        "rope-8k-plain | BF16 | 8300 | {\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":200,\"max_position_embeddings\":16384,\"rms_norm_eps\":1e-5}",
    })
    void aBf16CacheStaysCloseToTheFloat64Reference(String name, String dtype, int tokens, String config) throws Exception {
        assertLastLogitsMatchTheReference(name.trim(), dtype, tokens, config, EngineSettings.defaults().withKvCacheType("bf16"), 5e-3);
    }

    /**
     * Index's pad id is 0, also the system marker its chat prompts begin with. Hugging Face
     * generate, called without an attention mask as the Index demo calls it, masks those positions
     * and numbers the rest from 0: the float64 reference over the prompt without its 0s. With
     * mask-pad-in-prompt off, the reference over the whole prompt. The two answers differ, so each
     * comparison tells them apart.
     */
    @Test
    void generationIgnoresPromptPadIdsAsHuggingFaceGenerateDoes() throws Exception {
        requireNumpy();
        Path reference = Shared.require("tools/hf_llama_ref.py");
        Path model = Shared.require("models/index-tiny-random");
        int[] prompt = {0, 483, 321, 351, 459, 297, 3, 397, 0, 427, 117, 31, 155, 4};   // <unk> system reserved_0 … with a pad inside too
        int[] withoutPads = Arrays.stream(prompt).filter(id -> id != 0).toArray();
        int[] masked = referenceGreedy(reference, model, withoutPads, 12);
        int[] attended = referenceGreedy(reference, model, prompt, 12);
        assertFalse(Arrays.equals(masked, attended), "the reference tells the two apart");
        SamplingParams greedy = SamplingParams.greedy(12).withIgnoreEos(true);
        try (Engine engine = Engine.load(model, EngineSettings.defaults())) {
            GenerationResult r = engine.submit(prompt, greedy).get();
            assertArrayEquals(masked, r.outputIds());
            assertArrayEquals(prompt, r.promptIds(), "the result reports the prompt as submitted");
        }
        try (Engine engine = Engine.load(model, EngineSettings.defaults().withMaskPadInPrompt(false))) {
            assertArrayEquals(attended, engine.submit(prompt, greedy).get().outputIds());
        }
    }

    private static int[] referenceGreedy(Path reference, Path model, int[] prompt, int n) throws Exception {
        List<String> args = new ArrayList<>(List.of(reference.toString(), model.toString(), "greedy", String.valueOf(n)));
        for (int id : prompt) {
            args.add(String.valueOf(id));
        }
        return Arrays.stream(python(args.toArray(new String[0])).trim().split("[,\\s\\[\\]]+")).filter(t -> !t.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
    }

    /**
     * Mistral's sliding window, at every position of a 70-token prompt: the window (23) is not a
     * multiple of the KV block (16), so windows start inside blocks. Scoring runs the prefill path;
     * greedy generation past the prompt runs the decode path.
     */
    @Test
    void slidingWindowMatchesTheReferenceWithAWindowedMask() throws Exception {
        requireNumpy();
        Path reference = Shared.require("tools/hf_llama_ref.py");
        String config = "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
                + "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":300,\"max_position_embeddings\":512,"
                + "\"rms_norm_eps\":1e-5,\"sliding_window\":23,\"tie_word_embeddings\":false}";
        Path dir = tmp.resolve("mistral-window");
        python(script("make_random_model.py").toString(), dir.toString(), config, "F32", "4242");
        Random random = new Random(70);
        int[] ids = new int[70];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(300);
        }
        try (Engine engine = Engine.load(dir, EngineSettings.defaults())) {
            for (int n : new int[] {23, 24, 40, 70}) {
                List<String> args = new ArrayList<>(List.of(script("windowed_ref.py").toString(), reference.toString(), dir.toString(), "logits"));
                for (int i = 0; i < n; i++) {
                    args.add(String.valueOf(ids[i]));
                }
                double[] expected = JSON.readValue(python(args.toArray(new String[0])), double[].class);
                float[] actual = engine.score(java.util.Arrays.copyOf(ids, n), new int[] {n - 1})[0];
                IndexTinyRandomTest.assertClose(expected, actual, 1e-4, "window 23, " + n + " tokens");
            }
            List<String> args = new ArrayList<>(List.of(script("windowed_ref.py").toString(), reference.toString(), dir.toString(), "greedy", "12"));
            for (int i = 0; i < 50; i++) {
                args.add(String.valueOf(ids[i]));
            }
            String expected = python(args.toArray(new String[0])).trim();
            int[] generated = engine.submit(java.util.Arrays.copyOf(ids, 50), SamplingParams.greedy(12).withIgnoreEos(true)).get().outputIds();
            assertEquals(expected, java.util.Arrays.stream(generated).mapToObj(String::valueOf).collect(java.util.stream.Collectors.joining(" ")),
                    "greedy tokens after a 50-token prompt, window 23");
        }
    }
}
