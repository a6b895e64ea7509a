#!/usr/bin/env bash
# Run a command as one job or as an array of N jobs, on this machine or on Slurm (Kaldi's run.pl /
# slurm.pl in one script, without a scheduler of its own).
#
#   tools/launch.sh [options] LOG -- COMMAND [ARG ...]
#
# With --nj N the command runs N times; the word JOB in LOG and in COMMAND's arguments is replaced by
# the job index 1..N (e.g. "--shard JOB/4", "log/dump.JOB.log").  The exit status is non-zero when
# any job fails, and the failing logs' last lines are printed.
#
# options:
#   --cmd local|slurm  where jobs run (default: $SEDTK_CMD, else local)
#                      local: background jobs on this machine, then "wait"
#                      slurm: one "sbatch --wait" (an array job when N > 1); sbatch inherits the
#                      environment and the working directory, so run it from the recipe directory
#   --nj N             number of jobs (default 1)
#   --gpus G           GPUs per job (slurm: --gres=gpu:G; local: ignored, use CUDA_VISIBLE_DEVICES)
#   --cpus C           CPUs per job (slurm: --cpus-per-task)
#   --mem M            memory per job, Slurm syntax (e.g. 32G)
#   --time T           time limit per job, Slurm syntax (e.g. 24:00:00)
#   --slurm-opts "..." extra sbatch options (partition, account...), also from $SEDTK_SLURM_OPTS
#
# With one local job the output also goes to the terminal (tee); array jobs write only their logs.
set -euo pipefail

cmd=${SEDTK_CMD:-local}
nj=1
gpus=0
cpus=""
mem=""
time_limit=""
slurm_opts=${SEDTK_SLURM_OPTS:-}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cmd) cmd=$2; shift 2 ;;
    --nj) nj=$2; shift 2 ;;
    --gpus) gpus=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --time) time_limit=$2; shift 2 ;;
    --slurm-opts) slurm_opts=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --*) echo "launch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 3 ] || [ "$2" != "--" ]; then
  echo "launch.sh: usage: launch.sh [options] LOG -- COMMAND [ARG ...]" >&2
  exit 2
fi
log=$1
shift 2
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || { echo "launch.sh: --nj must be a positive integer, got '$nj'" >&2; exit 2; }
if [ "$nj" -gt 1 ] && [[ "$log" != *JOB* ]]; then
  echo "launch.sh: with --nj $nj the log name must contain JOB (one log per job): $log" >&2
  exit 2
fi
mkdir -p "$(dirname "$log")"

# The command for job $1, one argument per line of the array "job_args".
job_args=()
expand_job() {
  local j=$1 a
  job_args=()
  for a in "${cmd_args[@]}"; do job_args+=("${a//JOB/$j}"); done
}
cmd_args=("$@")

case "$cmd" in
  local)
    if [ "$nj" -eq 1 ]; then
      expand_job 1
      l=${log//JOB/1}
      echo "# ${job_args[*]}" > "$l"
      echo "# started $(date '+%Y-%m-%d %H:%M:%S')" >> "$l"
      rc=0
      "${job_args[@]}" 2>&1 | tee -a "$l" || rc=${PIPESTATUS[0]}
      echo "# ended $(date '+%Y-%m-%d %H:%M:%S') with status $rc" >> "$l"
      exit "$rc"
    fi
    pids=()
    for j in $(seq 1 "$nj"); do
      expand_job "$j"
      l=${log//JOB/$j}
      (
        echo "# ${job_args[*]}"
        echo "# started $(date '+%Y-%m-%d %H:%M:%S')"
        rc=0
        "${job_args[@]}" || rc=$?
        echo "# ended $(date '+%Y-%m-%d %H:%M:%S') with status $rc"
        exit "$rc"
      ) > "$l" 2>&1 &
      pids+=($!)
    done
    failed=()
    for j in $(seq 1 "$nj"); do
      wait "${pids[$((j - 1))]}" || failed+=("$j")
    done
    ;;
  slurm)
    command -v sbatch >/dev/null 2>&1 || { echo "launch.sh: --cmd slurm but sbatch is not on PATH" >&2; exit 2; }
    # Quote the command for sbatch --wrap; JOB becomes the array index inside the job.
    quoted=$(printf '%q ' "${cmd_args[@]}")
    quoted=${quoted//JOB/\$\{SLURM_ARRAY_TASK_ID:-1\}}
    sb=(sbatch --wait --parsable --job-name "sedtk-$(basename "${cmd_args[0]}")" --chdir "$PWD")
    if [ "$nj" -gt 1 ]; then
      sb+=(--array "1-$nj" --output "${log//JOB/%a}")
    else
      sb+=(--output "${log//JOB/1}")
    fi
    [ "$gpus" -gt 0 ] && sb+=(--gres "gpu:$gpus")
    [ -n "$cpus" ] && sb+=(--cpus-per-task "$cpus")
    [ -n "$mem" ] && sb+=(--mem "$mem")
    [ -n "$time_limit" ] && sb+=(--time "$time_limit")
    # shellcheck disable=SC2206
    [ -n "$slurm_opts" ] && sb+=($slurm_opts)
    sb+=(--wrap "echo '# '$(printf '%q' "$quoted"); echo \"# started \$(date '+%Y-%m-%d %H:%M:%S')\"; rc=0; $quoted || rc=\$?; echo \"# ended \$(date '+%Y-%m-%d %H:%M:%S') with status \$rc\"; exit \$rc")
    failed=()
    if ! "${sb[@]}"; then
      # sbatch --wait fails when any array task failed; find which from the logs' end lines.
      for j in $(seq 1 "$nj"); do
        l=${log//JOB/$j}
        grep -q '^# ended .* with status 0$' "$l" 2>/dev/null || failed+=("$j")
      done
      [ ${#failed[@]} -gt 0 ] || failed=(all)
    fi
    ;;
  *)
    echo "launch.sh: --cmd must be local or slurm, got '$cmd'" >&2
    exit 2
    ;;
esac

if [ ${#failed[@]} -gt 0 ]; then
  for j in "${failed[@]}"; do
    [ "$j" = all ] && { echo "launch.sh: sbatch failed; see ${log//JOB/*}" >&2; break; }
    l=${log//JOB/$j}
    echo "launch.sh: job $j of $nj failed; last lines of $l:" >&2
    tail -n 20 "$l" >&2 || true
  done
  exit 1
fi
