package io.longdoc.job.cli;

/** Bad usage or bad input: the message names what is wrong. Exit code 2. */
public class UsageException extends RuntimeException {
    public UsageException(String message) {
        super(message);
    }

    public UsageException(String message, Throwable cause) {
        super(message, cause);
    }
}
