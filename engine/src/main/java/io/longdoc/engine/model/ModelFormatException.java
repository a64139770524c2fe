package io.longdoc.engine.model;

/** A model directory or weight file that cannot be used; the message names the file (and tensor). */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
