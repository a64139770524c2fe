package io.longdoc.udfs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Model directories on HDFS, S3 or any Hadoop filesystem (a path with a scheme, e.g.
 * {@code hdfs://…}, {@code s3a://…}, {@code file:///…}) are copied once per JVM into a local cache
 * directory before loading: into a temporary directory first, sizes checked against the source,
 * then renamed atomically into place, so a half-copied model is never used. Threads of the same
 * JVM wait for that one copy; JVMs on one node share the finished cache. A plain local path is
 * used as it is.
 */
public final class ModelCache {
    private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);
    private static final ConcurrentHashMap<String, Path> LOCAL = new ConcurrentHashMap<>();
    private static final String COMPLETE = ".longdoc-complete";

    private ModelCache() {
    }

    /** The cache root: $LONGDOC_MODEL_CACHE, else java.io.tmpdir/longdoc-models. */
    public static Path defaultRoot() {
        String env = System.getenv("LONGDOC_MODEL_CACHE");
        return env != null && !env.isBlank() ? Path.of(env) : Path.of(System.getProperty("java.io.tmpdir"), "longdoc-models");
    }

    /** A local directory holding the model at {@code modelPath}, copying it there first when it is remote. */
    public static String localDir(String modelPath, Map<String, String> hadoopSettings, Path cacheRoot) {
        if (URI.create(modelPath.replace(" ", "%20")).getScheme() == null) {
            return modelPath;
        }
        String key = cacheRoot.toAbsolutePath() + "|" + modelPath;
        Path local = LOCAL.computeIfAbsent(key, k -> copy(modelPath, hadoopSettings, cacheRoot));
        if (!Files.isRegularFile(local.resolve(COMPLETE))) {
            // The cache was cleaned since: copy again.
            LOCAL.remove(key, local);
            local = LOCAL.computeIfAbsent(key, k -> copy(modelPath, hadoopSettings, cacheRoot));
        }
        return local.toString();
    }

    private static Path copy(String modelPath, Map<String, String> hadoopSettings, Path cacheRoot) {
        try {
            Configuration conf = new Configuration();
            hadoopSettings.forEach(conf::set);
            org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(modelPath);
            FileSystem fs = src.getFileSystem(conf);
            Map<String, Long> sizes = new TreeMap<>();
            for (FileStatus st : fs.listStatus(src)) {
                if (st.isFile()) {
                    sizes.put(st.getPath().getName(), st.getLen());
                }
            }
            if (sizes.isEmpty()) {
                throw new IOException("model directory " + modelPath + " has no files");
            }
            Path target = cacheRoot.resolve(digest(modelPath + sizes));
            if (complete(target, sizes)) {
                LOG.info("model {} already in the local cache {}", modelPath, target);
                return target;
            }
            Files.createDirectories(cacheRoot);
            Path staging = cacheRoot.resolve(target.getFileName() + ".tmp-" + UUID.randomUUID());
            Files.createDirectories(staging);
            long start = System.nanoTime();
            for (Map.Entry<String, Long> f : sizes.entrySet()) {
                Path local = staging.resolve(f.getKey());
                fs.copyToLocalFile(false, new org.apache.hadoop.fs.Path(src, f.getKey()), new org.apache.hadoop.fs.Path(local.toUri()), true);
                long got = Files.size(local);
                if (got != f.getValue()) {
                    throw new IOException("copy of " + f.getKey() + " from " + modelPath + " has " + got + " bytes, the source " + f.getValue());
                }
            }
            Files.writeString(staging.resolve(COMPLETE), sizes.toString(), StandardCharsets.UTF_8);
            try {
                Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException | AtomicMoveNotSupportedException e) {
                // Another JVM on this node finished the same copy first: use theirs.
                deleteTree(staging);
                if (!complete(target, sizes)) {
                    throw new IOException("could not move the model copy into " + target + ": " + e);
                }
            }
            LOG.info("copied model {} to {} in {} ms", modelPath, target, (System.nanoTime() - start) / 1_000_000);
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy model " + modelPath + " to the local cache " + cacheRoot + ": " + e.getMessage(), e);
        }
    }

    private static boolean complete(Path dir, Map<String, Long> sizes) throws IOException {
        if (!Files.isRegularFile(dir.resolve(COMPLETE))) {
            return false;
        }
        for (Map.Entry<String, Long> f : sizes.entrySet()) {
            Path p = dir.resolve(f.getKey());
            if (!Files.isRegularFile(p) || Files.size(p) != f.getValue()) {
                return false;
            }
        }
        return true;
    }

    private static String digest(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)), 0, 12);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
