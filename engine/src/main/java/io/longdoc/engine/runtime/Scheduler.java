package io.longdoc.engine.runtime;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching. One thread runs steps; each step takes a decode token from every
 * sequence that is generating and fills the rest of the per-step token budget with prefill
 * chunks of sequences still reading their prompt, the fewest tokens left first. Requests are
 * admitted from the queue, in order, while KV
 * blocks for their whole length (prompt + max new tokens) are free, so admission never
 * over-commits the cache; sequences retire as soon as they finish, freeing their blocks for the
 * next in line. A long document therefore never holds the others back.
 */
public final class Scheduler implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

    private final Backend backend;
    private final BlockAllocator blocks;
    private final int blockSize;
    private final int maxTokensPerStep;
    private final int maxSequences;
    private final int[] eosIds;
    private final ConcurrentLinkedQueue<Request> incoming = new ConcurrentLinkedQueue<>();
    private final ArrayDeque<Request> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final Thread thread;
    private volatile boolean closed;
    private long steps, stepTokens;
    // Lowered when a step runs out of device memory: steps then stay at or below what fitted.
    private int stepTokenLimit = Integer.MAX_VALUE, stepSequenceLimit = Integer.MAX_VALUE;

    /** A submitted request: prompt ids, sampling, and optionally positions whose logits to return. */
    static final class Request {
        final int[] prompt;     // the ids the model runs over
        final int[] submittedIds;  // the ids as submitted: the result's prompt, and the repetition penalty's (pad ids included)
        final SamplingParams params;
        final int[] scorePositions;
        final TokenConstraint constraint;   // null: unconstrained
        final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
        final CompletableFuture<float[][]> scores = new CompletableFuture<>();
        final long submitted = System.nanoTime();

        Request(int[] prompt, SamplingParams params, int[] scorePositions) {
            this(prompt, params, scorePositions, null);
        }

        Request(int[] prompt, SamplingParams params, int[] scorePositions, TokenConstraint constraint) {
            this(prompt, prompt, params, scorePositions, constraint);
        }

        Request(int[] prompt, int[] submittedIds, SamplingParams params, int[] scorePositions, TokenConstraint constraint) {
            this.prompt = prompt;
            this.submittedIds = submittedIds;
            this.params = params;
            this.scorePositions = scorePositions;
            this.constraint = constraint;
        }
    }

    /** A request in flight: its KV blocks and what it has computed so far. */
    private final class Sequence {
        final Request request;
        final int[] blockTable;
        final int maxNew;
        final Sampler sampler;
        final int[] output;
        final float[][] scoreLogits;
        int cached;        // positions whose keys and values are in the cache
        int generated;
        final long admitted = System.nanoTime();
        long firstToken = -1;   // System.nanoTime() of the first generated id

        Sequence(Request r, int[] blockTable, int maxNew) {
            this.request = r;
            this.blockTable = blockTable;
            this.maxNew = maxNew;
            this.sampler = new Sampler(r.params, backend.config().vocabSize(), r.submittedIds);
            this.output = new int[maxNew];
            this.scoreLogits = r.scorePositions == null ? null : new float[r.scorePositions.length][];
        }

        boolean prefilling() {
            return cached < request.prompt.length;
        }
    }

    public Scheduler(Backend backend, int maxTokensPerStep, int maxSequences) {
        this.backend = backend;
        this.blocks = new BlockAllocator(backend.kvBlocks());
        this.blockSize = backend.kvBlockSize();
        this.maxTokensPerStep = maxTokensPerStep;
        this.maxSequences = maxSequences;
        this.eosIds = backend.config().eosIds();
        this.thread = new Thread(this::loop, "longdoc-scheduler");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /** Context length a request may use: the model's, and what the KV cache can hold for one sequence. */
    public int maxSequenceTokens() {
        return Math.min(backend.config().contextLength(), blocks.total() * blockSize);
    }

    CompletableFuture<GenerationResult> submit(Request r) {
        // Checked once, on the caller's thread: admission may look at a waiting request every step.
        String badId = outsideVocabulary(r.submittedIds);
        if (badId != null) {
            fail(r, new IllegalArgumentException(badId));
            return r.result;
        }
        // Under the lock close() takes to set closed: a request is either refused here or queued
        // before close() fails what is left, never queued after and left without an answer.
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("engine is closed");
            }
            incoming.add(r);
            work.signal();
        } finally {
            lock.unlock();
        }
        return r.result;
    }

    private void loop() {
        while (!closed) {
            try {
                for (Request r; (r = incoming.poll()) != null; ) {
                    waiting.add(r);
                }
                admit();
                if (running.isEmpty()) {
                    lock.lock();
                    try {
                        if (incoming.isEmpty() && !closed) {
                            work.await(100, TimeUnit.MILLISECONDS);
                        }
                    } finally {
                        lock.unlock();
                    }
                    continue;
                }
                step();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (Throwable t) {
                LOG.error("scheduler step failed", t);
                for (Sequence s : running) {
                    finishExceptionally(s, t);
                }
                running.clear();
            }
        }
    }

    private void admit() {
        int limit = maxSequenceTokens();
        while (!waiting.isEmpty() && running.size() < maxSequences) {
            Request r = waiting.peek();
            if (r.prompt.length == 0) {
                waiting.poll();
                fail(r, new IllegalArgumentException("empty prompt: at least one token is needed"));
                continue;
            }
            if (r.prompt.length > limit) {
                waiting.poll();
                boolean cacheBound = blocks.total() * blockSize < backend.config().contextLength();
                fail(r, new IllegalArgumentException("prompt of " + r.prompt.length
                        + " tokens does not fit the context of " + limit + " tokens (model context "
                        + backend.config().contextLength() + ", KV cache " + blocks.total() * blockSize + " tokens)"
                        + (cacheBound ? ": the KV cache is the limit; give it more memory (longdoc.engine.kv-cache-mb on the CPU, "
                                + "gpu-memory-fraction on a GPU), store it in BF16 (kv-cache-type = bf16), or truncate to fewer tokens" : "")));
                continue;
            }
            // max_new_tokens is clamped to the model's context; a KV cache too small for the rest
            // is a setting to change, not a reason to return a shorter answer without saying so.
            int maxNew = Math.min(r.params.maxNewTokens(), limit - r.prompt.length);
            int contextMaxNew = Math.min(r.params.maxNewTokens(), backend.config().contextLength() - r.prompt.length);
            if (maxNew < contextMaxNew) {
                waiting.poll();
                fail(r, new IllegalArgumentException("a prompt of " + r.prompt.length + " tokens and " + contextMaxNew
                        + " new tokens need " + (r.prompt.length + contextMaxNew) + " KV positions, and the KV cache holds "
                        + blocks.total() * blockSize + ": give it more memory (longdoc.engine.kv-cache-mb on the CPU, "
                        + "gpu-memory-fraction on a GPU), store it in BF16 (kv-cache-type = bf16), or ask for fewer new tokens"));
                continue;
            }
            int need = (r.prompt.length + maxNew + blockSize - 1) / blockSize;
            int[] table = blocks.allocate(need);
            if (table == null) {
                break; // wait for running sequences to free blocks
            }
            waiting.poll();
            try {
                running.add(new Sequence(r, table, maxNew));
            } catch (RuntimeException | OutOfMemoryError e) {
                blocks.release(table);   // this request fails alone; the running ones go on
                fail(r, e);
            }
        }
    }

    /** A message naming the first prompt id outside the model's vocabulary, or null when all are inside. */
    private String outsideVocabulary(int[] prompt) {
        int vocab = backend.config().vocabSize();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocab) {
                return "token id " + prompt[i] + " at prompt position " + i + " is outside the vocabulary (size " + vocab + ")";
            }
        }
        return null;
    }

    /** Completes a request that never ran with the error. */
    private static void fail(Request r, Throwable t) {
        r.result.completeExceptionally(t);
        r.scores.completeExceptionally(t);
    }

    private void step() {
        List<Chunk> chunks = new ArrayList<>();
        List<Sequence> inStep = new ArrayList<>();
        int budget = Math.min(maxTokensPerStep, stepTokenLimit);
        // Decode tokens first: every generating sequence advances by one.
        for (Sequence s : running) {
            if (!s.prefilling() && budget > 0 && inStep.size() < stepSequenceLimit) {
                int last = s.output[s.generated - 1];
                chunks.add(new Chunk(s.blockTable, s.cached, new int[] {last}, new int[] {0}, s.cached + 1));
                inStep.add(s);
                budget--;
            }
        }
        // Then prefill chunks up to the token budget, the prompt with the fewest tokens left to read
        // first (ties in admission order): a short document admitted after a 32K one has its answer
        // started within a step or two instead of after the long prompt's every chunk, and the long
        // one takes what the short ones leave of the budget, so it is never stopped either.
        List<Sequence> prefilling = new ArrayList<>();
        for (Sequence s : running) {
            if (s.prefilling()) {
                prefilling.add(s);
            }
        }
        prefilling.sort(Comparator.comparingInt(s -> s.request.prompt.length - s.cached));
        for (Sequence s : prefilling) {
            if (budget > 0 && inStep.size() < stepSequenceLimit) {
                int n = Math.min(budget, s.request.prompt.length - s.cached);
                int[] tokens = Arrays.copyOfRange(s.request.prompt, s.cached, s.cached + n);
                chunks.add(new Chunk(s.blockTable, s.cached, tokens, logitsWanted(s, n), Math.max(s.request.prompt.length, s.cached + n)));
                inStep.add(s);
                budget -= n;
            }
        }
        // Sampling on the device when the backend can and every row of the step is a plain
        // sample (no constraint needing the full logits on the host, no scored positions).
        boolean onDevice = backend.samplesOnDevice();
        for (Sequence s : inStep) {
            onDevice &= s.request.constraint == null && s.request.scorePositions == null;
        }
        float[][] logits = null;
        int[] ids = null;
        try {
            if (onDevice) {
                List<Backend.DeviceSample> rows = new ArrayList<>();
                for (int c = 0; c < chunks.size(); c++) {
                    if (chunks.get(c).logitsAt().length > 0) {
                        Sampler sampler = inStep.get(c).sampler;
                        rows.add(new Backend.DeviceSample(sampler.params(), sampler.seenWords(), sampler.draws()));
                    }
                }
                ids = backend.forwardAndSample(chunks, rows);
            } else {
                logits = backend.forward(chunks);
            }
        } catch (RuntimeException | OutOfMemoryError e) {
            // One bad document must not fail the others: rerun each sequence of the step alone.
            // Nothing has advanced yet, and rerunning a chunk rewrites the same KV slots.
            int tokens = chunks.stream().mapToInt(ch -> ch.tokens().length).sum();
            if (outOfMemory(e)) {
                // Shrink later steps to half of this one, so the engine carries on at what fits.
                stepTokenLimit = Math.max(1, tokens / 2);
                stepSequenceLimit = Math.max(1, chunks.size() / 2);
                LOG.warn("a step of {} sequences and {} tokens ran out of device memory ({}); running them one at a time, "
                        + "and from now on at most {} sequences and {} tokens per step", chunks.size(), tokens, e.getMessage(),
                        stepSequenceLimit, stepTokenLimit);
            } else {
                LOG.warn("a step of {} sequences and {} tokens failed ({}); running them one at a time", chunks.size(), tokens, e.toString());
            }
            for (int c = 0; c < chunks.size(); c++) {
                float[][] alone;
                try {
                    alone = backend.forward(List.of(chunks.get(c)));
                } catch (RuntimeException | OutOfMemoryError failed) {
                    finishExceptionally(inStep.get(c), failed);
                    continue;
                }
                apply(chunks.get(c), inStep.get(c), alone, null, 0);
            }
            running.removeIf(s -> s.request.result.isDone());
            return;
        }
        steps++;
        int k = 0;
        for (int c = 0; c < chunks.size(); c++) {
            k = apply(chunks.get(c), inStep.get(c), logits, ids, k);
        }
        running.removeIf(s -> s.request.result.isDone());
    }

    /**
     * Takes one chunk's results (its rows from index k on: logits, or with device sampling the
     * chosen ids): advances the sequence, samples, finishes it. Returns the next k.
     */
    private int apply(Chunk chunk, Sequence s, float[][] logits, int[] ids, int k) {
        boolean wasPrefill = s.prefilling();
        int start = s.cached;
        s.cached += chunk.tokens().length;
        stepTokens += chunk.tokens().length;
        if (ids != null) {
            int at = chunk.logitsAt().length > 0 ? ids[k++] : -1;
            if (s.prefilling()) {
                return k;
            }
            if (s.maxNew == 0) {
                finish(s, "length");
                return k;
            }
            s.sampler.accept(at);
            return emit(s, at, k);
        }
        float[] next = null;
        for (int at : chunk.logitsAt()) {
            float[] row = logits[k++];
            int pos = start + at;
            if (s.scoreLogits != null) {
                for (int i = 0; i < s.request.scorePositions.length; i++) {
                    if (s.request.scorePositions[i] == pos) {
                        s.scoreLogits[i] = row.clone();
                    }
                }
            }
            if (pos == s.cached - 1 && (!wasPrefill || !s.prefilling()) && s.maxNew > 0) {
                next = row;
            }
        }
        if (s.prefilling()) {
            return k;
        }
        if (s.maxNew == 0) {
            finish(s, "length");
            return k;
        }
        if (next == null) {
            throw new IllegalStateException("no logits for the next token of a sequence");
        }
        TokenConstraint constraint = s.request.constraint;
        int token;
        try {
            if (constraint != null) {
                constraint.mask(next);
            }
            token = s.sampler.next(next);
            if (constraint != null) {
                constraint.accept(token);
            }
        } catch (RuntimeException e) {
            finishExceptionally(s, e);   // this request's constraint failed; the others go on
            return k;
        }
        return emit(s, token, k);
    }

    /** Appends a generated token and finishes the sequence when it ends it. */
    private int emit(Sequence s, int token, int k) {
        TokenConstraint constraint = s.request.constraint;
        if (s.generated == 0) {
            s.firstToken = System.nanoTime();
        }
        s.output[s.generated++] = token;
        if (constraint != null && constraint.isComplete()) {
            finish(s, "stop", false);   // the last token closed the JSON: it is content
        } else if (!s.request.params.ignoreEos() && contains(eosIds, token)) {
            finish(s, "eos", true);
        } else if (contains(s.request.params.stopIds(), token)) {
            finish(s, "stop", true);
        } else if (s.generated >= s.maxNew) {
            finish(s, "length", false);
        }
        return k;
    }


    /** Logits are needed at the prompt's last position (to sample) and at any scored position in this chunk. */
    private static int[] logitsWanted(Sequence s, int n) {
        List<Integer> at = new ArrayList<>();
        int end = s.cached + n;
        if (s.request.scorePositions != null) {
            for (int p : s.request.scorePositions) {
                if (p >= s.cached && p < end && !at.contains(p - s.cached)) {
                    at.add(p - s.cached);
                }
            }
        }
        if (end == s.request.prompt.length && s.maxNew > 0 && !at.contains(n - 1)) {
            at.add(n - 1);
        }
        at.sort(null);
        return at.stream().mapToInt(Integer::intValue).toArray();
    }

    private void finish(Sequence s, String reason) {
        finish(s, reason, false);
    }

    private void finish(Sequence s, String reason, boolean endsWithStopId) {
        blocks.release(s.blockTable);
        long now = System.nanoTime();
        if (s.scoreLogits != null) {
            s.request.scores.complete(s.scoreLogits);
        }
        s.request.result.complete(new GenerationResult(s.request.submittedIds, Arrays.copyOf(s.output, s.generated), reason, endsWithStopId,
                s.admitted - s.request.submitted, s.firstToken < 0 ? -1 : s.firstToken - s.request.submitted, now - s.request.submitted));
    }

    private void finishExceptionally(Sequence s, Throwable t) {
        blocks.release(s.blockTable);
        s.request.result.completeExceptionally(t);
        s.request.scores.completeExceptionally(t);
    }

    private static boolean outOfMemory(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof OutOfMemoryError || String.valueOf(t.getMessage()).contains("OUT_OF_MEMORY")) {
                return true;
            }
        }
        return false;
    }

    /** Per-step limits in force (lowered after a step ran out of memory); for tests and logs. */
    public int[] stepLimits() {
        return new int[] {stepSequenceLimit, stepTokenLimit};
    }

    private static boolean contains(int[] ids, int id) {
        for (int v : ids) {
            if (v == id) {
                return true;
            }
        }
        return false;
    }

    /** Steps run and tokens computed so far (for benchmarks and logs). */
    public long steps() {
        return steps;
    }

    public long stepTokens() {
        return stepTokens;
    }

    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            work.signal();
        } finally {
            lock.unlock();
        }
        // The loop stops after the step in progress; until it has, running and waiting are its own
        // (and the engine must not free the backend under it), so this waits for it however long the step takes.
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        IllegalStateException stopped = new IllegalStateException("engine closed");
        for (Sequence s : running) {
            finishExceptionally(s, stopped);
        }
        for (Request r : waiting) {
            fail(r, stopped);
        }
        for (Request r; (r = incoming.poll()) != null; ) {
            fail(r, stopped);
        }
    }
}
