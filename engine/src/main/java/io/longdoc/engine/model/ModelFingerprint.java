package io.longdoc.engine.model;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

/**
 * A short hash naming exactly which model produced an output: config.json plus the head of every
 * weight file (the safetensors headers, with their tensor names, shapes and offsets) — cheap to
 * compute on the driver, and different whenever the checkpoint is.
 */
public final class ModelFingerprint {
    private static final int HEAD_BYTES = 1 << 20;

    private ModelFingerprint() {
    }

    public static String of(Path modelDir) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            List<Path> files;
            try (Stream<Path> s = Files.list(modelDir)) {
                files = s.filter(p -> {
                    String n = p.getFileName().toString();
                    return n.equals("config.json") || n.endsWith(".safetensors") || n.endsWith(".bin") || n.equals("model.safetensors.index.json");
                }).sorted().toList();
            }
            for (Path f : files) {
                md.update(f.getFileName().toString().getBytes());
                md.update(Long.toString(Files.size(f)).getBytes());
                try (InputStream in = Files.newInputStream(f)) {
                    md.update(in.readNBytes(HEAD_BYTES));
                }
            }
            return HexFormat.of().formatHex(md.digest(), 0, 12);
        } catch (IOException e) {
            throw new ModelFormatException("cannot read model directory " + modelDir + ": " + e, e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
