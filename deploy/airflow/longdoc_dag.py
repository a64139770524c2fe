"""LongDoc nightly DAG: stats with the truncation gate -> run --resume -> publish run-summary.json.

The stats task exits 3 when too many documents would be truncated, which fails the DAG before any
GPU time is spent. The run task always passes --resume, so an Airflow retry continues where the
failed attempt stopped instead of recomputing. The summary task pushes run-summary.json to XCom.

Parameters (DAG params, overridable per run): input, output, model, template, max_truncated_share.
Needs the apache-airflow-providers-apache-spark package and a spark connection (spark_default)
pointing at the cluster; LONGDOC_JOB_JAR and LONGDOC_SPARK_CONF locate the job jar and settings.
"""
import json
import os
from datetime import datetime, timedelta

JOB_JAR = os.environ.get("LONGDOC_JOB_JAR", "/opt/longdoc/longdoc-job.jar")
MAIN_CLASS = "io.longdoc.job.Main"
DEFAULT_PARAMS = {
    "input": "hdfs:///data/docs/{{ ds }}",
    "output": "hdfs:///data/longdoc/{{ ds }}",
    "model": "/models/Index-1.9B-32K",
    "template": "index-zh",
    "max_truncated_share": "0.05",
}
# Spark's GPU scheduling: one GPU per executor, four tasks share its engine.
SPARK_CONF = {
    "spark.executor.resource.gpu.amount": "1",
    "spark.task.resource.gpu.amount": "0.25",
    "spark.executor.resource.gpu.discoveryScript": "./discover-gpus.sh",
    "spark.driver.extraJavaOptions": "--add-modules=jdk.incubator.vector",
    "spark.executor.extraJavaOptions": "--add-modules=jdk.incubator.vector",
}


def application_args(task):
    """The LongDoc subcommand and arguments each Spark task runs (templated by Airflow)."""
    p = "{{ params.%s }}"
    if task == "stats":
        return ["stats", "--input", p % "input", "--model", p % "model", "--out", p % "output",
                "--max-truncated-share", p % "max_truncated_share"]
    if task == "run":
        return ["run", "--input", p % "input", "--model", p % "model", "--task", "summarize",
                "--template", p % "template", "--out", p % "output", "--resume"]
    raise ValueError(task)


TASKS = ["stats", "run", "publish_summary"]
EDGES = [("stats", "run"), ("run", "publish_summary")]


def read_summary(output, **context):
    """Reads run-summary.json (local path or any Hadoop filesystem via pyarrow when installed)."""
    path = output.rstrip("/") + "/run-summary.json"
    if path.startswith("hdfs://") or path.startswith("s3a://"):
        import pyarrow.fs  # noqa: deferred, only on workers that read remote storage
        fs, p = pyarrow.fs.FileSystem.from_uri(path)
        with fs.open_input_stream(p) as f:
            summary = json.loads(f.read())
    else:
        with open(path) as f:
            summary = json.load(f)
    context["ti"].xcom_push(key="run_summary", value=summary)
    return summary["rows"]


try:
    from airflow import DAG
    from airflow.operators.python import PythonOperator
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
except ImportError:  # parsed outside Airflow (tests): the task graph above is still checked
    DAG = None

if DAG is not None:
    with DAG(
        dag_id="longdoc_nightly",
        start_date=datetime(2026, 1, 1),
        schedule="@daily",
        catchup=False,
        params=DEFAULT_PARAMS,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
        tags=["longdoc"],
    ) as dag:
        stats = SparkSubmitOperator(task_id="stats", application=JOB_JAR, java_class=MAIN_CLASS,
                                    application_args=application_args("stats"), conf=SPARK_CONF,
                                    files=os.environ.get("LONGDOC_DISCOVERY_SCRIPT", "/opt/longdoc/discover-gpus.sh"),
                                    retries=0)  # a tripped gate (exit 3) is an answer, not a transient failure
        run = SparkSubmitOperator(task_id="run", application=JOB_JAR, java_class=MAIN_CLASS,
                                  application_args=application_args("run"), conf=SPARK_CONF,
                                  files=os.environ.get("LONGDOC_DISCOVERY_SCRIPT", "/opt/longdoc/discover-gpus.sh"))
        publish = PythonOperator(task_id="publish_summary", python_callable=read_summary,
                                 op_kwargs={"output": "{{ params.output }}"})
        stats >> run >> publish
