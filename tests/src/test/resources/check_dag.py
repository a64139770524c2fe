"""Loads deploy/airflow/longdoc_dag.py without Airflow and prints its task graph and commands as JSON."""
import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("longdoc_dag", sys.argv[1])
dag = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dag)
print(json.dumps({
    "tasks": dag.TASKS,
    "edges": dag.EDGES,
    "stats": dag.application_args("stats"),
    "run": dag.application_args("run"),
    "main_class": dag.MAIN_CLASS,
    "conf": dag.SPARK_CONF,
}))
