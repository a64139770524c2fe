package io.longdoc.udfs;

import io.longdoc.engine.runtime.Engine;
import io.longdoc.engine.runtime.EngineSettings;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One inference engine per executor JVM, keyed by model and engine settings: loaded lazily by the
 * first task that needs it and shared by every task thread of the executor, so all task slots feed
 * the same continuous-batching queue.
 */
public final class EngineHolder {
    private static final Logger LOG = LoggerFactory.getLogger(EngineHolder.class);
    private static final ConcurrentHashMap<String, Engine> ENGINES = new ConcurrentHashMap<>();
    private static final ConcurrentHashMap<String, AtomicInteger> LOADS = new ConcurrentHashMap<>();

    private EngineHolder() {
    }

    public static Engine get(String modelDir, EngineSettings settings) {
        return ENGINES.computeIfAbsent(key(modelDir, settings), k -> {
            long start = System.nanoTime();
            Engine e = Engine.load(Path.of(modelDir), settings);
            LOADS.computeIfAbsent(k, x -> new AtomicInteger()).incrementAndGet();
            LOG.info("loaded engine for {} on {} in {} ms", modelDir, e.backend().name(), (System.nanoTime() - start) / 1_000_000);
            return e;
        });
    }

    private static String key(String modelDir, EngineSettings settings) {
        return modelDir + "|" + settings;
    }

    /** How many times this JVM has loaded the engine for this model and settings (1 once loaded: it is never reloaded). */
    public static int loads(String modelDir, EngineSettings settings) {
        AtomicInteger n = LOADS.get(key(modelDir, settings));
        return n == null ? 0 : n.get();
    }
}
