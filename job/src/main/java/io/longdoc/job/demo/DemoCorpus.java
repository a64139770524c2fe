package io.longdoc.job.demo;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * A synthetic document table with the shape of real long-document corpora: log-normal lengths
 * (median about 6K tokens) with a long tail past 32K tokens, English reports with some Chinese
 * passages, and a few null and empty texts. Document i depends only on (seed, i), so the table is
 * generated on the executors, partition by partition.
 */
public final class DemoCorpus implements MapPartitionsFunction<Row, Row> {
    public static final StructType SCHEMA = new StructType()
            .add("id", DataTypes.StringType, false)
            .add("title", DataTypes.StringType, false)
            .add("text", DataTypes.StringType, true);

    private static final String[] SUBJECTS = {"The committee", "The agency", "Our analysis", "The report", "Each region",
        "The board", "Local operators", "The survey", "This program", "Independent auditors", "The ministry", "Most respondents"};
    private static final String[] VERBS = {"found", "estimated", "recommended", "reviewed", "measured", "questioned",
        "approved", "reported", "projected", "examined", "observed", "documented"};
    private static final String[] OBJECTS = {"the annual budget", "long-term maintenance costs", "regional energy demand",
        "the proposed regulation", "water quality in the basin", "staffing levels at rural clinics", "the transit expansion",
        "emissions from heavy vehicles", "the pension fund's liabilities", "broadband coverage", "flood defences",
        "the procurement process", "small business lending", "hospital waiting times"};
    private static final String[] TAILS = {"over the last five years", "despite earlier objections", "in most districts",
        "according to the latest data", "with several caveats", "compared with the previous period", "for the first time",
        "after a public consultation", "in line with the statute", "at a higher cost than planned"};
    private static final String[] CHINESE = {"该报告指出，地区能源需求在过去五年中持续增长。", "委员会建议进一步审查长期维护成本。",
        "调查显示，大多数受访者支持扩大公共交通。", "审计人员发现采购流程存在若干问题。", "与上一时期相比，排放量有所下降。"};

    private final long seed;

    public DemoCorpus(long seed) {
        this.seed = seed;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> ids) {
        List<Row> out = new ArrayList<>();
        // Each partition holds a few dozen documents, so materialising its rows here is small.
        while (ids.hasNext()) {
            long i = ids.next().getLong(0);
            out.add(document(seed, i));
        }
        return out.iterator();
    }

    public static Row document(long seed, long i) {
        String id = String.format("doc-%05d", i);
        SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + i);
        if (i % 61 == 17) {
            return RowFactory.create(id, "missing text", null);
        }
        if (i % 67 == 23) {
            return RowFactory.create(id, "empty text", "");
        }
        // Log-normal token length: median ~6000 tokens, sigma 1.0 puts ~10% past 32K.
        double tokens = Math.exp(Math.log(6000) + 1.0 * gaussian(rnd));
        tokens = Math.min(Math.max(tokens, 40), 120_000);
        int targetChars = (int) (tokens * 4.2);
        StringBuilder sb = new StringBuilder(targetChars + 200);
        sb.append("Report ").append(id).append("\n\n");
        while (sb.length() < targetChars) {
            int sentences = 3 + rnd.nextInt(5);
            for (int s = 0; s < sentences; s++) {
                if (rnd.nextInt(12) == 0) {
                    sb.append(CHINESE[rnd.nextInt(CHINESE.length)]);
                } else {
                    sb.append(SUBJECTS[rnd.nextInt(SUBJECTS.length)]).append(' ')
                            .append(VERBS[rnd.nextInt(VERBS.length)]).append(' ')
                            .append(OBJECTS[rnd.nextInt(OBJECTS.length)]).append(' ')
                            .append(TAILS[rnd.nextInt(TAILS.length)]);
                    if (rnd.nextInt(4) == 0) {
                        sb.append(", with ").append(1 + rnd.nextInt(98)).append('.').append(rnd.nextInt(10)).append("% of the total");
                    }
                    sb.append(". ");
                }
            }
            sb.append("\n\n");
        }
        return RowFactory.create(id, "Report " + id, sb.toString());
    }

    private static double gaussian(SplittableRandom rnd) {
        // Box-Muller.
        double u = 1.0 - rnd.nextDouble(), v = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
}
