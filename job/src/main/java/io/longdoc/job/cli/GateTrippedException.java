package io.longdoc.job.cli;

/** A quality gate (e.g. --max-truncated-share) tripped after the report was written. Exit code 3. */
public class GateTrippedException extends RuntimeException {
    public GateTrippedException(String message) {
        super(message);
    }
}
