package io.longdoc.engine.tokenizer;

/** A tokenizer file that cannot be used: corrupt, truncated, or of an unsupported kind. */
public class TokenizerFormatException extends RuntimeException {
    public TokenizerFormatException(String message) {
        super(message);
    }

    public TokenizerFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
