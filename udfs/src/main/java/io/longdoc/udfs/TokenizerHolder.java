package io.longdoc.udfs;

import io.longdoc.engine.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One tokenizer per executor JVM and path, loaded by the first task that needs it and shared
 * by every task thread of that executor (the tokenizer is thread-safe).
 */
public final class TokenizerHolder {
    private static final Logger LOG = LoggerFactory.getLogger(TokenizerHolder.class);
    private static final ConcurrentHashMap<String, Tokenizer> LOADED = new ConcurrentHashMap<>();
    private static final AtomicInteger LOADS = new AtomicInteger();

    private TokenizerHolder() {
    }

    public static Tokenizer get(String path) {
        return LOADED.computeIfAbsent(path, p -> {
            long start = System.nanoTime();
            Tokenizer t = Tokenizer.load(Path.of(p));
            LOADS.incrementAndGet();
            LOG.info("loaded tokenizer {} ({} pieces) in {} ms", p, t.vocabSize(), (System.nanoTime() - start) / 1_000_000);
            return t;
        });
    }

    /** How many times this JVM has loaded a tokenizer (once per distinct path). */
    public static int loads() {
        return LOADS.get();
    }
}
