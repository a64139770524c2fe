package io.longdoc.job.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Command-line options of one subcommand: {@code --name value} and {@code --flag}. Options are
 * declared with their help text, so {@code --help} and error messages come from one place.
 */
public final class Args {
    private record Option(String name, String valueName, String help, boolean flag) {
    }

    private final String command;
    private final String synopsis;
    private final Map<String, Option> options = new LinkedHashMap<>();
    private final Map<String, String> values = new LinkedHashMap<>();
    private final List<String> configOverrides = new ArrayList<>();

    public Args(String command, String synopsis) {
        this.command = command;
        this.synopsis = synopsis;
        flag("help", "print this help and exit");
        option("conf", "FILE", "HOCON file overriding conf/application.conf");
    }

    public Args option(String name, String valueName, String help) {
        options.put(name, new Option(name, valueName, help, false));
        return this;
    }

    public Args flag(String name, String help) {
        options.put(name, new Option(name, null, help, true));
        return this;
    }

    /** Parses {@code argv}; unknown options and missing values are usage errors. */
    public Args parse(String[] argv) {
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (a.startsWith("-D") && a.length() > 2) {
                configOverrides.add(a.substring(2));
                continue;
            }
            if (!a.startsWith("--")) {
                throw new UsageException(command + ": unexpected argument '" + a + "' (see " + command + " --help)");
            }
            String name = a.substring(2);
            String inline = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                inline = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            Option o = options.get(name);
            if (o == null) {
                throw new UsageException(command + ": unknown option --" + name + " (see " + command + " --help)");
            }
            if (o.flag) {
                values.put(name, "true");
            } else if (inline != null) {
                values.put(name, inline);
            } else {
                if (i + 1 >= argv.length) {
                    throw new UsageException(command + ": option --" + name + " needs a value " + o.valueName);
                }
                values.put(name, argv[++i]);
            }
        }
        return this;
    }

    /**
     * Fills every option not given on the command line from its HOCON twin in {@code section}
     * (same name; null or absent means no default). Command-line values win.
     */
    public Args defaults(com.typesafe.config.Config section) {
        if (fromCommandLine == null) {
            fromCommandLine = new java.util.HashSet<>(values.keySet());
        }
        for (Option o : options.values()) {
            if (values.containsKey(o.name) || !section.hasPath(o.name)) {
                continue;
            }
            if (o.flag) {
                if (section.getBoolean(o.name)) {
                    values.put(o.name, "true");
                }
            } else {
                Object v = section.getValue(o.name).unwrapped();
                values.put(o.name, v instanceof java.util.List<?> list
                        ? String.join(",", list.stream().map(String::valueOf).toList()) : String.valueOf(v));
            }
        }
        return this;
    }

    private java.util.Set<String> fromCommandLine;   // the options typed, once defaults() has filled in others

    /** True when the option was typed on the command line, not filled from its HOCON twin by {@link #defaults}. */
    public boolean onCommandLine(String name) {
        return fromCommandLine == null ? values.containsKey(name) : fromCommandLine.contains(name);
    }

    public boolean wantsHelp() {
        return has("help");
    }

    public boolean has(String name) {
        return values.containsKey(name);
    }

    public String get(String name) {
        return values.get(name);
    }

    public String get(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    public String require(String name) {
        String v = values.get(name);
        if (v == null) {
            throw new UsageException(command + ": missing required option --" + name + " (see " + command + " --help)");
        }
        return v;
    }

    public Integer getInt(String name) {
        String v = values.get(name);
        if (v == null) {
            return null;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be an integer, got '" + v + "'");
        }
    }

    public Long getLong(String name) {
        String v = values.get(name);
        if (v == null) {
            return null;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be an integer, got '" + v + "'");
        }
    }

    public Double getDouble(String name) {
        String v = values.get(name);
        if (v == null) {
            return null;
        }
        try {
            return Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be a number, got '" + v + "'");
        }
    }

    /** {@code -Dkey=value} arguments, applied over the configuration. */
    public List<String> configOverrides() {
        return configOverrides;
    }

    public String help() {
        StringBuilder sb = new StringBuilder("usage: longdoc ").append(command).append(' ').append(synopsis).append("\n\noptions:\n");
        for (Option o : options.values()) {
            String left = "  --" + o.name + (o.flag ? "" : " " + o.valueName);
            sb.append(String.format("%-34s %s%n", left, o.help));
        }
        sb.append(String.format("%-34s %s%n", "  -Dkey=value", "override one configuration key (see conf/application.conf)"));
        return sb.toString();
    }
}
