#!/usr/bin/env bash
# Submits a LongDoc subcommand to a Spark cluster (YARN, Kubernetes, standalone) with the job jar:
#
#   deploy/spark-submit.sh [--master URL] [--gpu|--cpu] [--deploy-mode client|cluster] [--conf-file F]
#                          [--executors N] [--spark-conf k=v ...] -- SUBCOMMAND ARGS...
#
# Uses $SPARK_HOME/bin/spark-submit (or the one on the PATH). --gpu (the default) asks Spark's
# GPU scheduling for one GPU per executor, shared by LONGDOC_TASKS_PER_GPU tasks (default 4) so
# several tasks feed that executor's single engine; --cpu drops the GPU settings.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jar="$root/job/target/longdoc-job.jar"

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

master="" deploy_mode="client" gpu=1 conf_file="" executors="" spark_confs=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --master) master="$2"; shift 2 ;;
    --deploy-mode) deploy_mode="$2"; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --cpu) gpu=0; shift ;;
    --conf-file) conf_file="$2"; shift 2 ;;
    --executors) executors="$2"; shift 2 ;;
    --spark-conf) spark_confs+=("$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "spark-submit.sh: unknown option $1 (options go before --, the subcommand after it)" >&2; exit 2 ;;
  esac
done
[[ $# -ge 1 ]] || { echo "spark-submit.sh: missing -- SUBCOMMAND ARGS..." >&2; exit 2; }
[[ "$deploy_mode" == client || "$deploy_mode" == cluster ]] || { echo "spark-submit.sh: --deploy-mode must be client or cluster" >&2; exit 2; }

if [[ -n "${SPARK_HOME:-}" ]]; then
  submit="$SPARK_HOME/bin/spark-submit"
else
  submit="$(command -v spark-submit || true)"
fi
[[ -n "$submit" && -x "$submit" ]] || { echo "spark-submit.sh: no spark-submit (set SPARK_HOME or put it on the PATH)" >&2; exit 2; }

if [[ ! -f "$jar" ]]; then
  echo "spark-submit.sh: building the job jar (mvn -q -DskipTests package) ..." >&2
  (cd "$root" && mvn -q -DskipTests package) >&2
fi

subcommand="$1"; shift
files=()
args=(
  --class io.longdoc.job.Main
  --name "LongDoc $subcommand"
  --deploy-mode "$deploy_mode"
  # The Vector API for the CPU backend (Spark adds the --add-opens it needs itself).
  --conf "spark.driver.extraJavaOptions=--add-modules=jdk.incubator.vector"
  --conf "spark.executor.extraJavaOptions=--add-modules=jdk.incubator.vector"
)
[[ -n "$master" ]] && args+=(--master "$master")
if [[ -n "$executors" ]]; then
  args+=(--conf "spark.executor.instances=$executors")
fi
if [[ "$gpu" == 1 ]]; then
  tasks_per_gpu="${LONGDOC_TASKS_PER_GPU:-4}"
  args+=(
    --conf spark.executor.resource.gpu.amount=1
    --conf "spark.task.resource.gpu.amount=$(awk "BEGIN { print 1 / $tasks_per_gpu }")"
    --conf "spark.executor.resource.gpu.discoveryScript=./discover-gpus.sh"
  )
  files+=("$root/deploy/gpu/discover-gpus.sh")
fi
conf_arg=()
if [[ -n "$conf_file" ]]; then
  [[ -f "$conf_file" ]] || { echo "spark-submit.sh: --conf-file $conf_file: no such file" >&2; exit 2; }
  files+=("$conf_file")
  # In cluster mode the driver runs elsewhere and finds the shipped file in its working directory.
  if [[ "$deploy_mode" == cluster ]]; then conf_arg=(--conf "$(basename "$conf_file")"); else conf_arg=(--conf "$conf_file"); fi
fi
if [[ ${#files[@]} -gt 0 ]]; then
  args+=(--files "$(IFS=,; echo "${files[*]}")")
fi
for kv in ${spark_confs[@]+"${spark_confs[@]}"}; do
  args+=(--conf "$kv")
done

exec "$submit" "${args[@]}" "$jar" "$subcommand" ${conf_arg[@]+"${conf_arg[@]}"} "$@"
