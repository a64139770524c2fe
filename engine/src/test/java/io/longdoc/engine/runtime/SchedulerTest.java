package io.longdoc.engine.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.longdoc.engine.tokenizer.Shared;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Continuous batching gives each request exactly what it would get alone. */
class SchedulerTest {
    static Path model() {
        return Shared.require("models/stories260k");
    }

    static int[] randomPrompt(Random r, int length) {
        int[] ids = new int[length];
        ids[0] = 1;
        for (int i = 1; i < length; i++) {
            ids[i] = 3 + r.nextInt(500);
        }
        return ids;
    }

    static SamplingParams sampling(int i) {
        // A mix: greedy, temperature with top-k/top-p, repetition penalty; each with its own seed.
        return switch (i % 3) {
            case 0 -> SamplingParams.greedy(20 + i);
            case 1 -> new SamplingParams(25, 0.8f, 40, 0.9f, 1f, 1000 + i, false, new int[0]);
            default -> new SamplingParams(30, 1.0f, 0, 1f, 1.3f, 2000 + i, true, new int[0]);
        };
    }

    /** {@code cpu} with its forward pass replaced by {@code forward} (which may call cpu's): to inject failures or record steps. */
    static Backend around(Backend cpu, java.util.function.Function<List<Chunk>, float[][]> forward) {
        return new Backend() {
            public io.longdoc.engine.model.ModelConfig config() {
                return cpu.config();
            }

            public String name() {
                return cpu.name() + ", wrapped by a test";
            }

            public int kvBlocks() {
                return cpu.kvBlocks();
            }

            public int kvBlockSize() {
                return cpu.kvBlockSize();
            }

            public float[][] forward(List<Chunk> chunks) {
                return forward.apply(chunks);
            }

            public void close() {
            }
        };
    }

    @Test
    void batchedResultsEqualSoloResults() throws Exception {
        Random random = new Random(3);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            prompts.add(randomPrompt(random, 1 + random.nextInt(120)));
        }
        List<int[]> solo = new ArrayList<>();
        try (Engine engine = Engine.load(model(), EngineSettings.defaults().withMaxSequences(1))) {
            for (int i = 0; i < prompts.size(); i++) {
                solo.add(engine.submit(prompts.get(i), sampling(i)).get().outputIds());
            }
        }
        // Small steps, so prefill chunks and decode tokens of different sequences share steps.
        try (Engine engine = Engine.load(model(), EngineSettings.defaults().withMaxTokensPerStep(48))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                futures.add(engine.submit(prompts.get(i), sampling(i)));
            }
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(solo.get(i), futures.get(i).get().outputIds(), "request " + i);
            }
            assertTrue(engine.scheduler().steps() < prompts.stream().mapToInt(p -> p.length).sum(), "steps were shared");
        }
    }

    /** Out of memory as a GPU reports it (an exception naming CUDA_ERROR_OUT_OF_MEMORY) and as the JVM does (an OutOfMemoryError). */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"device", "java-heap"})
    void aStepThatRunsOutOfMemoryShrinksLaterStepsAndLosesNothing(String kind) throws Exception {
        Random random = new Random(5);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            prompts.add(randomPrompt(random, 10 + random.nextInt(30)));
        }
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            List<int[]> solo = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                solo.add(engine.submit(prompts.get(i), sampling(i)).get().outputIds());
            }
            Backend cpu = engine.backend();
            int[] largestStep = new int[1];
            // The real CPU backend, failing like a GPU out of memory whenever a step holds more than 3 sequences.
            Backend tight = around(cpu, chunks -> {
                if (chunks.size() > 3 && kind.equals("device")) {
                    throw new IllegalStateException("CUDA_ERROR_OUT_OF_MEMORY (injected)");
                }
                if (chunks.size() > 3) {
                    throw new OutOfMemoryError("Java heap space (injected)");
                }
                largestStep[0] = Math.max(largestStep[0], chunks.size());
                return cpu.forward(chunks);
            });
            try (Scheduler scheduler = new Scheduler(tight, 512, 64)) {
                List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
                for (int i = 0; i < prompts.size(); i++) {
                    futures.add(scheduler.submit(new Scheduler.Request(prompts.get(i), sampling(i), null)));
                }
                for (int i = 0; i < prompts.size(); i++) {
                    assertArrayEquals(solo.get(i), futures.get(i).get().outputIds(), "request " + i);
                }
                int[] limits = scheduler.stepLimits();
                assertTrue(limits[0] <= 3 && limits[0] >= 1, "sequence limit " + limits[0]);
                assertTrue(largestStep[0] <= 3);
            }
        }
    }

    /**
     * A long prompt is prefilled in chunks while a short request decodes in the same steps: the
     * short one is done before the long one has its first token, and both equal their solo runs.
     */
    @Test
    void decodeTokensAndPrefillChunksShareSteps() throws Exception {
        int[] shortPrompt = {1, 403};
        int[] longPrompt = randomPrompt(new Random(3), 200);
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            int[] shortSolo = engine.submit(shortPrompt, SamplingParams.greedy(20).withIgnoreEos(true)).get().outputIds();
            int[] longSolo = engine.submit(longPrompt, SamplingParams.greedy(5).withIgnoreEos(true)).get().outputIds();
            Backend cpu = engine.backend();
            List<List<Integer>> stepChunkSizes = java.util.Collections.synchronizedList(new ArrayList<>());
            Backend recording = around(cpu, chunks -> {
                stepChunkSizes.add(chunks.stream().map(c -> c.tokens().length).toList());
                return cpu.forward(chunks);
            });
            try (Scheduler scheduler = new Scheduler(recording, 8, 64)) {
                CompletableFuture<GenerationResult> small = scheduler.submit(new Scheduler.Request(shortPrompt, SamplingParams.greedy(20).withIgnoreEos(true), null));
                CompletableFuture<GenerationResult> large = scheduler.submit(new Scheduler.Request(longPrompt, SamplingParams.greedy(5).withIgnoreEos(true), null));
                GenerationResult s = small.get(60, TimeUnit.SECONDS), l = large.get(60, TimeUnit.SECONDS);
                assertArrayEquals(shortSolo, s.outputIds());
                assertArrayEquals(longSolo, l.outputIds());
                assertTrue(s.totalNanos() < l.firstTokenNanos(), "the short request finished while the long prompt was still being read");
            }
            long mixed = stepChunkSizes.stream().filter(sizes -> sizes.size() == 2 && sizes.get(0) == 1 && sizes.get(1) == 7).count();
            assertTrue(mixed >= 15, "steps with one decode token and a 7-token prefill chunk: " + mixed + " of " + stepChunkSizes);
        }
    }

    /**
     * A long prompt admitted first does not hold back a short one behind it: the short prompt's
     * chunk goes first, so it is answered while the long one is still being read. The first step
     * waits until both are queued, so the order does not depend on thread timing.
     */
    @Test
    void aShortPromptAfterALongOneIsNotHeldBackByIt() throws Exception {
        int[] longPrompt = randomPrompt(new Random(4), 400);
        int[] shortPrompt = {1, 403, 87};
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            int[] shortSolo = engine.submit(shortPrompt, SamplingParams.greedy(3).withIgnoreEos(true)).get().outputIds();
            int[] longSolo = engine.submit(longPrompt, SamplingParams.greedy(3).withIgnoreEos(true)).get().outputIds();
            Backend cpu = engine.backend();
            java.util.concurrent.CountDownLatch bothQueued = new java.util.concurrent.CountDownLatch(1);
            Backend gated = around(cpu, chunks -> {
                try {
                    bothQueued.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                return cpu.forward(chunks);
            });
            try (Scheduler scheduler = new Scheduler(gated, 8, 64)) {
                List<String> finished = java.util.Collections.synchronizedList(new ArrayList<>());
                CompletableFuture<GenerationResult> large = scheduler.submit(new Scheduler.Request(longPrompt, SamplingParams.greedy(3).withIgnoreEos(true), null));
                large.thenRun(() -> finished.add("long"));
                CompletableFuture<GenerationResult> small = scheduler.submit(new Scheduler.Request(shortPrompt, SamplingParams.greedy(3).withIgnoreEos(true), null));
                small.thenRun(() -> finished.add("short"));
                bothQueued.countDown();
                GenerationResult s = small.get(60, TimeUnit.SECONDS), l = large.get(60, TimeUnit.SECONDS);
                assertArrayEquals(shortSolo, s.outputIds());
                assertArrayEquals(longSolo, l.outputIds());
                assertEquals(List.of("short", "long"), finished);
                // 400 tokens at 8 a step: the long prompt's first token comes after 50 steps; the
                // short one's answer was done long before (at most its own 3 steps after the first).
                assertTrue(s.totalNanos() < l.firstTokenNanos(), "the short request finished while the long prompt was still being read");
            }
        }
    }

    /**
     * Requests submitted while the engine closes, from many threads: each is either refused at
     * submit or answered (with a result or the "engine closed" error), none left waiting forever.
     */
    @Test
    void closingWhileThreadsSubmitLeavesNoRequestUnanswered() throws Exception {
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            for (int round = 0; round < 5; round++) {
                Scheduler scheduler = new Scheduler(engine.backend(), 64, 8);
                List<CompletableFuture<GenerationResult>> accepted = java.util.Collections.synchronizedList(new ArrayList<>());
                java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
                List<Thread> threads = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    int seed = t;
                    Thread th = new Thread(() -> {
                        Random r = new Random(seed);
                        try {
                            go.await();
                            for (int i = 0; i < 50; i++) {
                                accepted.add(scheduler.submit(new Scheduler.Request(randomPrompt(r, 5), SamplingParams.greedy(3), null)));
                            }
                        } catch (IllegalStateException closed) {
                            // refused at submit: the engine is closed
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    });
                    th.start();
                    threads.add(th);
                }
                go.countDown();
                Thread.sleep(round);
                scheduler.close();
                for (Thread th : threads) {
                    th.join();
                }
                for (CompletableFuture<GenerationResult> f : accepted) {
                    try {
                        f.get(10, TimeUnit.SECONDS);
                    } catch (java.util.concurrent.ExecutionException e) {
                        assertTrue(e.getCause().getMessage().contains("engine closed"), e.getCause().toString());
                    }
                }
            }
        }
    }

    @Test
    void blockingGenerateReturnsEachPromptsResultInOrder() throws Exception {
        Random r = new Random(12);
        List<int[]> prompts = List.of(randomPrompt(r, 5), randomPrompt(r, 40), randomPrompt(r, 12));
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            List<GenerationResult> all = engine.generate(prompts, SamplingParams.greedy(15));
            assertEquals(prompts.size(), all.size());
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(prompts.get(i), all.get(i).promptIds());
                assertArrayEquals(engine.submit(prompts.get(i), SamplingParams.greedy(15)).get().outputIds(), all.get(i).outputIds(), "prompt " + i);
            }
        }
    }

    @Test
    void manyThreadsSubmittingAtOnce() throws Exception {
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            int[] prompt = {1, 403, 407};
            int[] expected = engine.submit(prompt, SamplingParams.greedy(30)).get().outputIds();
            ExecutorService pool = Executors.newFixedThreadPool(8);
            List<Future<int[]>> results = new ArrayList<>();
            for (int t = 0; t < 32; t++) {
                results.add(pool.submit(() -> engine.submit(prompt, SamplingParams.greedy(30)).get().outputIds()));
            }
            for (Future<int[]> f : results) {
                assertArrayEquals(expected, f.get());
            }
            pool.shutdown();
        }
    }

    @Test
    void requestsWaitForKvMemoryInsteadOfFailing() throws Exception {
        // Room for about two sequences of 64 tokens at a time; eight requests still all complete.
        long perToken = io.longdoc.engine.cpu.CpuBackend.kvBytesPerToken(io.longdoc.engine.model.ModelConfig.load(model()));
        try (Engine engine = Engine.load(model(), EngineSettings.defaults().withKvCacheBytes(perToken * 128))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                futures.add(engine.submit(new int[] {1, 403 + i}, SamplingParams.greedy(40).withIgnoreEos(true)));
            }
            for (CompletableFuture<GenerationResult> f : futures) {
                assertEquals(40, f.get().outputIds().length);
            }
            // A single request larger than the whole cache is an error, not a hang.
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> engine.submit(new int[200], SamplingParams.greedy(1)).get());
            assertTrue(e.getCause().getMessage().contains("does not fit"), e.getCause().getMessage());
            assertTrue(e.getCause().getMessage().contains("the KV cache is the limit") && e.getCause().getMessage().contains("kv-cache-mb"),
                    e.getCause().getMessage());
        }
    }

    @Test
    void timingsFollowTheRequest() throws Exception {
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            GenerationResult r = engine.submit(randomPrompt(new Random(3), 100), SamplingParams.greedy(20).withIgnoreEos(true)).get();
            assertEquals(20, r.outputIds().length);
            // Queued, then the prompt's prefill and the first token, then the other 19.
            assertTrue(0 <= r.queuedNanos() && r.queuedNanos() < r.firstTokenNanos() && r.firstTokenNanos() < r.totalNanos(), r.toString());
            assertEquals(19 / ((r.totalNanos() - r.firstTokenNanos()) / 1e9), r.decodeTokensPerSecond(), 1e-6);
            GenerationResult none = engine.submit(new int[] {1, 2, 3}, SamplingParams.greedy(0)).get();
            assertEquals(0, none.outputIds().length);
            assertEquals(-1, none.firstTokenNanos());
            assertEquals(0, none.decodeTokensPerSecond());
        }
    }

    @Test
    void maxNewTokensIsClampedToTheContext() throws Exception {
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            int[] prompt = randomPrompt(new Random(1), 500);
            GenerationResult r = engine.submit(prompt, SamplingParams.greedy(100).withIgnoreEos(true)).get();
            assertEquals(12, r.outputIds().length); // context 512
            assertEquals("length", r.finishReason());
            ExecutionException tooLong = assertThrows(ExecutionException.class,
                    () -> engine.submit(randomPrompt(new Random(2), 600), SamplingParams.greedy(1)).get());
            assertTrue(tooLong.getCause().getMessage().contains("600 tokens"));
            // The model's context is the limit here, not the cache: no advice about the cache.
            assertFalse(tooLong.getCause().getMessage().contains("KV cache is the limit"), tooLong.getCause().getMessage());
        }
    }

    @Test
    void chunkedPrefillGivesTheSameLogits() throws Exception {
        int[] ids = randomPrompt(new Random(9), 300);
        int[] positions = {0, 6, 7, 150, 299};
        float[][] whole, chunked;
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            whole = engine.score(ids, positions);
        }
        try (Engine engine = Engine.load(model(), EngineSettings.defaults().withMaxTokensPerStep(7))) {
            chunked = engine.score(ids, positions);
        }
        for (int i = 0; i < positions.length; i++) {
            for (int j = 0; j < whole[i].length; j++) {
                assertEquals(whole[i][j], chunked[i][j], 1e-4f, "position " + positions[i]);
            }
        }
    }

    @Test
    void aFailingDocumentDoesNotFailTheOthersInItsStep() throws Exception {
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            int[] good = {1, 403, 407};
            int[] expected = engine.submit(good, SamplingParams.greedy(20)).get().outputIds();
            // The real CPU backend, failing on any step that holds token 499 (as a kernel might on one document).
            Backend cpu = engine.backend();
            Backend poisoned = around(cpu, chunks -> {
                for (Chunk c : chunks) {
                    for (int id : c.tokens()) {
                        if (id == 499) {
                            throw new IllegalStateException("kernel failed on token 499 (injected)");
                        }
                    }
                }
                return cpu.forward(chunks);
            });
            try (Scheduler scheduler = new Scheduler(poisoned, 512, 64)) {
                List<CompletableFuture<GenerationResult>> ok = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    ok.add(scheduler.submit(new Scheduler.Request(good, SamplingParams.greedy(20), null)));
                }
                CompletableFuture<GenerationResult> bad = scheduler.submit(new Scheduler.Request(new int[] {1, 499, 5}, SamplingParams.greedy(20), null));
                for (CompletableFuture<GenerationResult> f : ok) {
                    assertArrayEquals(expected, f.get(60, TimeUnit.SECONDS).outputIds());
                }
                ExecutionException e = assertThrows(ExecutionException.class, () -> bad.get(60, TimeUnit.SECONDS));
                assertTrue(e.getCause().getMessage().contains("token 499"), e.getCause().getMessage());
            }
        }
    }

    @Test
    void promptIdsOutsideTheVocabularyFailTheirRequestAloneAndFreeNothingTwice() throws Exception {
        // A small cache: a request that leaked its blocks would leave too little for the last one.
        long perToken = io.longdoc.engine.cpu.CpuBackend.kvBytesPerToken(io.longdoc.engine.model.ModelConfig.load(model()));
        try (Engine engine = Engine.load(model(), EngineSettings.defaults().withKvCacheBytes(perToken * 128))) {
            int[] good = {1, 403, 407};
            int[] expected = engine.submit(good, SamplingParams.greedy(20)).get().outputIds();
            // With and without a repetition penalty (whose sampler reads every prompt id at admission).
            SamplingParams penalty = new SamplingParams(20, 0f, 0, 1f, 1.1f, 0, false, new int[0]);
            List<CompletableFuture<GenerationResult>> ok = new ArrayList<>(), bad = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                ok.add(engine.submit(good, SamplingParams.greedy(20)));
                bad.add(engine.submit(new int[] {1, 9999, 5}, SamplingParams.greedy(20)));
                bad.add(engine.submit(new int[] {1, -1, 5}, penalty));
                bad.add(engine.submit(new int[] {1, 512}, penalty));
            }
            for (CompletableFuture<GenerationResult> f : ok) {
                assertArrayEquals(expected, f.get(60, TimeUnit.SECONDS).outputIds());
            }
            for (CompletableFuture<GenerationResult> f : bad) {
                ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(60, TimeUnit.SECONDS));
                assertTrue(e.getCause().getMessage().matches("token id (9999|-1|512) at prompt position 1 is outside the vocabulary \\(size 512\\)"),
                        e.getCause().getMessage());
            }
            // Teacher-forced scoring fails the same way rather than waiting forever.
            ExecutionException scored = assertThrows(ExecutionException.class, () -> engine.score(new int[] {1, 600}, new int[] {1}));
            assertTrue(scored.getCause().getMessage().contains("600"), scored.getCause().getMessage());
            // Nothing leaked: a request needing almost the whole cache still runs.
            assertEquals(100, engine.submit(new int[] {1}, SamplingParams.greedy(100).withIgnoreEos(true)).get(60, TimeUnit.SECONDS).outputIds().length);
        }
    }

    @Test
    void aKvCacheTooSmallForTheNewTokensIsAnErrorNotAShorterAnswer() throws Exception {
        long perToken = io.longdoc.engine.cpu.CpuBackend.kvBytesPerToken(io.longdoc.engine.model.ModelConfig.load(model()));
        try (Engine engine = Engine.load(model(), EngineSettings.defaults().withKvCacheBytes(perToken * 64))) {
            int cache = engine.scheduler().maxSequenceTokens();
            assertEquals(64, cache);
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> engine.submit(new int[] {1, 403}, SamplingParams.greedy(100).withIgnoreEos(true)).get(60, TimeUnit.SECONDS));
            assertTrue(e.getCause().getMessage().contains("2 tokens and 100 new tokens need 102 KV positions, and the KV cache holds 64")
                    && e.getCause().getMessage().contains("kv-cache-mb"), e.getCause().getMessage());
            // What fits runs in full.
            assertEquals(62, engine.submit(new int[] {1, 403}, SamplingParams.greedy(62).withIgnoreEos(true)).get(60, TimeUnit.SECONDS).outputIds().length);
        }
    }

    @Test
    void eosAndStopIdsEndGeneration() throws Exception {
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            int[] free = engine.submit(new int[] {1}, SamplingParams.greedy(200).withIgnoreEos(true)).get().outputIds();
            int stop = free[5];
            GenerationResult r = engine.submit(new int[] {1},
                    new SamplingParams(200, 0f, 0, 1f, 1f, 0, false, new int[] {stop})).get();
            assertEquals("stop", r.finishReason());
            assertEquals(stop, r.outputIds()[r.outputIds().length - 1]);
            assertTrue(r.outputIds().length <= 6);
        }
    }

    @Test
    void seedsReproduceAndDiffer() throws Exception {
        try (Engine engine = Engine.load(model(), EngineSettings.defaults())) {
            SamplingParams p = new SamplingParams(40, 1.0f, 0, 1f, 1f, 42, true, new int[0]);
            int[] a = engine.submit(new int[] {1}, p).get().outputIds();
            int[] b = engine.submit(new int[] {1}, p).get().outputIds();
            int[] c = engine.submit(new int[] {1}, p.withSeed(43)).get().outputIds();
            assertArrayEquals(a, b);
            assertNotEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(c));
            // top-k 1 is greedy whatever the temperature.
            int[] greedy = engine.submit(new int[] {1}, SamplingParams.greedy(40).withIgnoreEos(true)).get().outputIds();
            int[] topOne = engine.submit(new int[] {1}, new SamplingParams(40, 1.5f, 1, 1f, 1f, 5, true, new int[0])).get().outputIds();
            assertArrayEquals(greedy, topOne);
        }
    }
}
