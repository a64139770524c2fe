package io.longdoc.job.stats;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;
import java.util.Map;

/**
 * The token-length report in its three forms: report.json (for machines and Airflow),
 * report.md (text) and report.html (a self-contained page with the histogram chart).
 */
public final class StatsReport {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public final TokenStats stats;
    public final String input;
    public final String tokenizer;
    public final long duplicateIds;
    /** Prefill FLOPs after truncation, when a model config was given; else null. */
    public final Double prefillFlops;
    public final String model;

    public StatsReport(TokenStats stats, String input, String tokenizer, long duplicateIds, Double prefillFlops, String model) {
        this.stats = stats;
        this.input = input;
        this.tokenizer = tokenizer;
        this.duplicateIds = duplicateIds;
        this.prefillFlops = prefillFlops;
        this.model = model;
    }

    public ObjectNode toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("rows", stats.rows);
        root.put("null_rows", stats.nullRows);
        root.put("empty_rows", stats.emptyRows);
        root.put("counted_rows", stats.countedRows);
        root.put("duplicate_ids", duplicateIds);
        ObjectNode tokens = root.putObject("tokens");
        tokens.put("total", stats.total);
        putNullable(tokens, "min", stats.min);
        putNullable(tokens, "max", stats.max);
        if (stats.mean == null) {
            tokens.putNull("mean");
        } else {
            tokens.put("mean", stats.mean);
        }
        for (Map.Entry<Integer, Integer> p : stats.percentiles.entrySet()) {
            putNullable(tokens, "p" + p.getKey(), p.getValue());
        }
        ArrayNode hist = root.putArray("histogram");
        for (TokenStats.Bucket b : stats.histogram) {
            ObjectNode o = hist.addObject();
            o.put("lo", b.lo());
            if (b.hi() == null) {
                o.putNull("hi");
            } else {
                o.put("hi", b.hi());
            }
            o.put("rows", b.rows());
            o.put("share", b.share());
        }
        ObjectNode budget = root.putObject("budget");
        budget.put("context_tokens", stats.budget.contextTokens());
        budget.put("max_new_tokens", stats.budget.maxNewTokens());
        budget.put("template_tokens", stats.budget.templateTokens());
        budget.put("prompt_budget", stats.budget.promptBudget());
        budget.put("rows_over", stats.rowsOver);
        budget.put("share_over", stats.shareOver);
        budget.put("tokens_dropped", stats.tokensDropped);
        if (prefillFlops != null) {
            ObjectNode est = root.putObject("prefill_estimate");
            est.put("model", model);
            est.put("flops", prefillFlops);
            est.put("note", "forward-pass FLOPs to prefill every counted document after middle truncation, template included");
        }
        root.put("input", input);
        root.put("tokenizer", tokenizer);
        return root;
    }

    public String json() {
        try {
            return JSON.writeValueAsString(toJson()) + "\n";
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    public String markdown() {
        StringBuilder md = new StringBuilder();
        md.append("# Token-length report\n\n");
        md.append("Input: `").append(input).append("`  \nTokenizer: `").append(tokenizer).append("`\n\n");
        md.append("| rows | null | empty | counted | duplicate ids |\n|---:|---:|---:|---:|---:|\n");
        md.append(String.format(Locale.ROOT, "| %d | %d | %d | %d | %d |%n%n", stats.rows, stats.nullRows, stats.emptyRows, stats.countedRows, duplicateIds));
        md.append("## Tokens per document\n\n| total | min | mean | p50 | p90 | p95 | p99 | max |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        md.append(String.format(Locale.ROOT, "| %d | %s | %s | %s | %s | %s | %s | %s |%n%n", stats.total, str(stats.min),
                stats.mean == null ? "–" : String.format(Locale.ROOT, "%.1f", stats.mean),
                str(stats.percentiles.get(50)), str(stats.percentiles.get(90)), str(stats.percentiles.get(95)),
                str(stats.percentiles.get(99)), str(stats.max)));
        md.append("## Histogram\n\n| tokens | rows | share | |\n|---|---:|---:|---|\n");
        for (TokenStats.Bucket b : stats.histogram) {
            int bar = (int) Math.round(b.share() * 40);
            md.append(String.format(Locale.ROOT, "| %s | %d | %.1f%% | %s |%n", range(b), b.rows(), 100 * b.share(), "█".repeat(bar)));
        }
        TokenStats.Budget bu = stats.budget;
        md.append("\n## Truncation budget\n\n");
        md.append(String.format(Locale.ROOT, "prompt budget = context %d − max new tokens %d − template %d = **%d** tokens%n%n",
                bu.contextTokens(), bu.maxNewTokens(), bu.templateTokens(), bu.promptBudget()));
        md.append(String.format(Locale.ROOT, "- documents over budget: **%d** (%.2f%% of counted)%n- tokens dropped from their middles: **%d**%n",
                stats.rowsOver, 100 * stats.shareOver, stats.tokensDropped));
        if (prefillFlops != null) {
            md.append(String.format(Locale.ROOT, "- prefill after truncation (%s): %.3e FLOPs%n", model, prefillFlops));
        }
        return md.toString();
    }

    public String html() {
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>LongDoc token-length report</title>\n<style>")
                .append("body{font-family:system-ui,sans-serif;margin:2em;max-width:960px;color:#222}")
                .append("table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}")
                .append("th{background:#f3f3f3}code{background:#f6f6f6;padding:1px 4px}.over{color:#b00}")
                .append("</style></head><body>\n<h1>Token-length report</h1>\n");
        h.append("<p>Input <code>").append(esc(input)).append("</code>, tokenizer <code>").append(esc(tokenizer)).append("</code></p>\n");
        h.append(svgHistogram());
        h.append("<h2>Buckets</h2><table><tr><th>tokens</th><th>rows</th><th>share</th></tr>\n");
        for (TokenStats.Bucket b : stats.histogram) {
            h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%d</td><td>%.1f%%</td></tr>%n", esc(range(b)), b.rows(), 100 * b.share()));
        }
        h.append("</table>\n<h2>Tokens per document</h2><table><tr><th>rows</th><th>null</th><th>empty</th><th>duplicate ids</th><th>total</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>\n");
        h.append(String.format(Locale.ROOT, "<tr><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr></table>%n",
                stats.rows, stats.nullRows, stats.emptyRows, duplicateIds, stats.total, str(stats.min),
                stats.mean == null ? "–" : String.format(Locale.ROOT, "%.1f", stats.mean), str(stats.percentiles.get(50)),
                str(stats.percentiles.get(90)), str(stats.percentiles.get(95)), str(stats.percentiles.get(99)), str(stats.max)));
        TokenStats.Budget bu = stats.budget;
        h.append("<h2>Truncation budget</h2>\n");
        h.append(String.format(Locale.ROOT, "<p>Prompt budget = context %d − max new tokens %d − template %d = <b>%d</b> tokens. "
                        + "Longer documents keep their first and last %d tokens.</p>%n",
                bu.contextTokens(), bu.maxNewTokens(), bu.templateTokens(), bu.promptBudget(), bu.promptBudget() / 2));
        h.append(String.format(Locale.ROOT, "<p class=\"over\">%d documents over budget (%.2f%% of counted); %d tokens dropped from their middles.</p>%n",
                stats.rowsOver, 100 * stats.shareOver, stats.tokensDropped));
        if (prefillFlops != null) {
            h.append(String.format(Locale.ROOT, "<p>Prefill after truncation (%s): %.3e FLOPs.</p>%n", esc(model), prefillFlops));
        }
        h.append("</body></html>\n");
        return h.toString();
    }

    /** Bar chart of the buckets as inline SVG: no script, no network. */
    private String svgHistogram() {
        int width = 720, height = 300, left = 60, bottom = 50, top = 20;
        int n = stats.histogram.size();
        long maxRows = 1;
        for (TokenStats.Bucket b : stats.histogram) {
            maxRows = Math.max(maxRows, b.rows());
        }
        double barW = (double) (width - left - 20) / n;
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"token-length histogram\">%n", width, height));
        int plotH = height - top - bottom;
        s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>%n", left, height - bottom, width - 10, height - bottom));
        s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>%n", left, top, left, height - bottom));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">%d</text>%n", left - 6, top + 4, maxRows));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">0</text>%n", left - 6, height - bottom + 4));
        s.append(String.format(Locale.ROOT, "<text x=\"14\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">documents</text>%n", top + plotH / 2, top + plotH / 2));
        for (int i = 0; i < n; i++) {
            TokenStats.Bucket b = stats.histogram.get(i);
            double h = (double) b.rows() / maxRows * plotH;
            double x = left + i * barW + 4;
            boolean overBudget = b.lo() >= stats.budget.promptBudget();
            s.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s: %d</title></rect>%n",
                    x, height - bottom - h, barW - 8, h, overBudget ? "#c0504d" : "#4f81bd", esc(range(b)), b.rows()));
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%d</text>%n", x + (barW - 8) / 2, height - bottom - h - 4, b.rows()));
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>%n", x + (barW - 8) / 2, height - bottom + 16, esc(range(b))));
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">tokens per document</text>%n", left + (width - left) / 2, height - 10));
        s.append("</svg>\n");
        return s.toString();
    }

    private static String range(TokenStats.Bucket b) {
        return b.hi() == null ? "≥ " + b.lo() : "[" + b.lo() + ", " + b.hi() + ")";
    }

    private static void putNullable(ObjectNode o, String key, Integer v) {
        if (v == null) {
            o.putNull(key);
        } else {
            o.put(key, v);
        }
    }

    private static String str(Integer v) {
        return v == null ? "–" : v.toString();
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
