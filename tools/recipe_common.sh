# shellcheck shell=bash disable=SC2154  # the recipe variables named below are set by the sourcing run.sh
# Shell helpers every recipe sources (egs/*/run.sh), in one place:
#
#   log MSG...                 timestamped message with file:line:function (as icefall's prepare.sh)
#   die MSG...                 log MSG and exit 1
#   parse_options "$@"         Kaldi parse_options style: every variable defined before the call is an
#                              option: "--nj 8", "--stop-stage=4", "--force true" ("-" in a name is "_");
#                              "--config FILE" sources FILE first; "--help" prints $help_message.
#   stage_enabled N            true when $stage <= N <= $stop_stage
#   run_step OUT [DEP...] -- COMMAND [ARG...]
#                              run COMMAND unless OUT/.done holds the hash of its inputs; on success
#                              write that hash to OUT/.done (atomically).  The hash covers the command
#                              line (without "--nj N" / "--shard I/N": the number of jobs never changes
#                              a result) and the content of each DEP: a file, a YAML config together
#                              with every "base:" it inherits, or a directory (its .done marker when it
#                              has one, else its top-level files: a Kaldi data dir).  A changed config
#                              or input redoes the step; "--force true" redoes every step.
#                              A finished output made from other inputs is moved to OUT.old first;
#                              an unfinished one is left for COMMAND to resume (sedtk train does).
#   job [--gpus N] [--nodes N] [--cpus N] [--tasks N] [--ddp] KIND LOG OUT [DEP...] -- COMMAND [ARG...]
#                              run_step as a job of KIND (train, dump, decode, prep, score), with the
#                              resources of its kind (sedtk/conf/jobs.yaml, the recipe's $jobs_conf,
#                              SEDTK_SLURM_*; python -m sedtk.jobs resources), its output in LOG and
#                              its request at the top of LOG; on $cmd: local (the local pool, each job
#                              on GPUs of its own) or slurm (sbatch).  --ddp: torchrun over the job's
#                              GPUs (--nodes > 1: a rendezvous through srun).  --tasks N: an array of
#                              N jobs, JOB in LOG and COMMAND standing for the task 1..N (only in a
#                              plan).  With no plan open the job runs now; inside one it is planned:
#   jobs_begin / jobs_run      open a plan / run it: every job declared in between (the stages, folds,
#                              systems) runs as soon as the jobs whose OUT it reads have finished,
#                              independent ones concurrently (at most $max_jobs, 0: as the GPUs or
#                              Slurm allow), on Slurm as sbatch --dependency=afterok chains; a failed
#                              job stops only its chain; the summary names the failed chains and
#                              their logs, and a re-run redoes only what failed or did not finish
#   system_stage1 / system_final CONF_DIR SYS, system_tasks / system_upstream SYS, system_conf
#                              the paper's system graph (sedtk/systems.py; see below)
#   require_dir VAR            exit with a clear message unless the directory named by $VAR exists
#   require_path VAR           the same for a file or a directory
#   systems_dump / systems_stage1 / systems_stage2 / systems_decode / split_score
#                              stages 1-5 of the corpus recipes, by prefix (a fold is a prefix); below
#
# Recipes use them like this (see egs/mini/run.sh):
#   . ../../tools/recipe_common.sh
#   stage=0; stop_stage=5; nj=4; force=false
#   parse_options "$@"
#   if stage_enabled 0; then log "Stage 0: data prep"; run_step data data.yaml -- sedtk data ...; fi
#   jobs_begin
#   if stage_enabled 2; then job --gpus 1 train exp/log/train_a.log exp/a data -- sedtk train ...; fi
#   if stage_enabled 4; then job --gpus 1 decode exp/log/decode_a.log exp/a/decode exp/a -- sedtk ...; fi
#   jobs_run

# Refuse to be executed: the functions must land in the recipe's shell.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "recipe_common.sh is meant to be sourced: . tools/recipe_common.sh" >&2
  exit 1
fi

SEDTK_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SEDTK_ROOT=$(dirname "$SEDTK_TOOLS")
export SEDTK_TOOLS SEDTK_ROOT
# The checkout's virtual environment (tools/setup.sh) when sedtk is not already on PATH.
if ! command -v sedtk >/dev/null 2>&1 && [ -x "$SEDTK_ROOT/.venv/bin/sedtk" ]; then
  export PATH="$SEDTK_ROOT/.venv/bin:$PATH"
fi
if ! command -v sedtk >/dev/null 2>&1; then
  echo "error: the sedtk command is not on PATH: run tools/setup.sh (creates .venv), or activate the" \
    "environment where sedtk is installed" >&2
  exit 1
fi

# _say FRAME PREFIX MSG: a log line naming the caller FRAME levels up (file:line:function).
_say() {
  local f=$(($1 + 1)) prefix=$2
  shift 2
  local fname=${BASH_SOURCE[$f]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[$((f - 1))]}:${FUNCNAME[$f]:-main}) ${prefix}$*"
}

log() { _say 1 "" "$@"; }

die() {
  _say 1 "error: " "$@" >&2
  exit 1
}

# For the helpers below: log and die naming the recipe line that called the helper.
_log_caller() { _say 2 "" "$@"; }
_die_caller() {
  _say 2 "error: " "$@" >&2
  exit 1
}

_is_bool() { [ "$1" = true ] || [ "$1" = false ]; }

parse_options() {
  local arg name value
  while [ $# -gt 0 ]; do
    arg=$1
    case "$arg" in
      -h | --help)
        echo -e "${help_message:-No help message: read the header of $0.}"
        exit 0
        ;;
      --*=*)
        name=${arg%%=*}; value=${arg#*=}; shift
        ;;
      --*)
        [ $# -ge 2 ] || _die_caller "option $arg needs a value (booleans too: $arg true)"
        name=$arg; value=$2; shift 2
        ;;
      *)
        _die_caller "unexpected argument '$arg' (options are --name value; see $0 --help)"
        ;;
    esac
    name=${name#--}
    name=${name//-/_}
    if [ "$name" = config ]; then
      [ -f "$value" ] || _die_caller "--config $value: no such file"
      # shellcheck disable=SC1090
      . "$value"
      continue
    fi
    [[ "$name" =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]] || _die_caller "invalid option name --${name//_/-}"
    if ! declare -p "$name" >/dev/null 2>&1; then
      _die_caller "invalid option --${name//_/-} (not a setting of $0; see --help)"
    fi
    if _is_bool "${!name}" && ! _is_bool "$value"; then
      _die_caller "--${name//_/-} takes true or false, got '$value'"
    fi
    printf -v "$name" '%s' "$value"
  done
  return 0
}

stage_enabled() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}

# The Python interpreter that runs sedtk (for the recipes' local/*.py scripts).
SEDTK_PYTHON=$(dirname "$(command -v sedtk 2>/dev/null || echo /usr/bin/python3)")/python
[ -x "$SEDTK_PYTHON" ] || SEDTK_PYTHON=python3
export SEDTK_PYTHON

# The packaged paper configs ("base: paper/NAME" in a recipe conf), for hashing inherited settings.
# (SEDTK_CONF_DIR is set with the system graph below, by python -m sedtk.systems shell.)
_sedtk_conf_dir() { echo "${SEDTK_CONF_DIR:-}"; }

# Print the YAML file and every file it inherits through "base:" lines (relative to the file, or to
# sedtk's packaged conf/ directory; ".yaml" may be left out).
_conf_chain() {
  local file=$1 depth=${2:-0} base dir cand
  [ "$depth" -lt 16 ] || die "$file: 'base:' chain deeper than 16 (a cycle?)"
  echo "$file"
  base=$(sed -n 's/^base:[[:space:]]*["'\'']\{0,1\}\([^"'\''#]*[^"'\''#[:space:]]\).*/\1/p' "$file" | head -n 1)
  [ -n "$base" ] || return 0
  dir=$(dirname "$file")
  for cand in "$dir/$base" "$dir/$base.yaml" "$(_sedtk_conf_dir)/$base" "$(_sedtk_conf_dir)/$base.yaml"; do
    if [ -f "$cand" ]; then
      _conf_chain "$cand" $((depth + 1))
      return 0
    fi
  done
  return 0  # unresolved here: sedtk itself reports a missing base with the file name
}

_hash_dep() {
  local dep=$1 f
  if [ -f "$dep" ]; then
    case "$dep" in
      *.yaml | *.yml)
        while read -r f; do echo "file $f"; sha256sum < "$f"; done < <(_conf_chain "$dep")
        ;;
      *) echo "file $dep"; sha256sum < "$dep" ;;
    esac
  elif [ -n "${_PLAN_KEY[${dep%/}]:-}" ]; then  # the output of a planned job: its marker-to-be
    echo "dir $dep"
    echo "${_PLAN_KEY[${dep%/}]}"
  elif [ -d "$dep" ]; then
    echo "dir $dep"
    if [ -f "$dep/.done" ]; then
      cat "$dep/.done"
    else
      # descriptor_feats.tsv is the measurement cache that describe, decode --evidence and score keep in
      # a data dir (sedtk.data.measure), not an input: scoring would otherwise redo the decodes
      find "$dep" -maxdepth 1 -type f ! -name '.*' ! -name descriptor_feats.tsv -size -64M -print0 |
        sort -z | xargs -0 -r sha256sum
    fi
  else
    echo "value $dep"
  fi
}

# _make_key [DEP...] -- COMMAND...: the step's hash into $_KEY (in this shell: while a plan is open,
# the hashes of the inputs are kept in _DEP_HASH, so that the plan's many jobs reading one data dir
# hash it once; the inputs do not change while a plan is written).
declare -gA _DEP_HASH=()
_make_key() {
  local deps=() words=() skip=false a text=""
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do deps+=("$1"); shift; done
  shift
  for a in "$@"; do
    if $skip; then skip=false; continue; fi
    case "$a" in
      --nj | --shard) skip=true; continue ;;
      --nj=* | --shard=*) continue ;;
    esac
    words+=("$a")
  done
  for a in "${deps[@]}"; do
    if [ -n "${_SEDTK_PLAN:-}" ] && [ -z "${_PLAN_KEY[${a%/}]:-}" ]; then
      [ -n "${_DEP_HASH[$a]+set}" ] || _DEP_HASH[$a]=$(_hash_dep "$a")
      text+=${_DEP_HASH[$a]}$'\n'
    else
      text+=$(_hash_dep "$a")$'\n'
    fi
  done
  _KEY=$({ printf '%q ' "${words[@]}"; echo; printf '%s' "$text"; } | sha256sum | cut -d' ' -f1)
}

_step_key() {
  _make_key "$@"
  echo "$_KEY"
}

run_step() {
  local out=$1; shift
  local deps=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do deps+=("$1"); shift; done
  [ $# -ge 2 ] || _die_caller "run_step $out: expected '-- COMMAND' after the dependencies"
  shift
  _make_key "${deps[@]}" -- "$@"
  _run_keyed "$_KEY" "$out" "$@"
}

# _run_keyed KEY OUT COMMAND...: run_step's rules for a step whose key is known (called by run_step and
# job, whose log and die lines name the recipe line that called them).
_run_keyed() {
  local key=$1 out=$2
  shift 2
  if [ "${force:-false}" != true ] && [ -f "$out/.done" ] && [ "$(cat "$out/.done")" = "$key" ]; then
    _say 2 "" "skip $out: done with the same config and inputs (--force true redoes it)"
    return 0
  fi
  # A finished output made from other inputs (or --force) is moved aside, so that the command starts
  # afresh instead of resuming it; an unfinished one (no marker) is left for the command to resume.
  if [ -e "$out" ] && { [ -f "$out/.done" ] || [ "${force:-false}" = true ]; }; then
    rm -rf "$out.old"
    mv "$out" "$out.old"
    _say 2 "" "moved the previous $out to $out.old (its config or inputs changed, or --force)"
  fi
  _say 2 "" "run: $*"
  if ! "$@"; then
    _say 2 "error: " "failed: $*" >&2
    exit 1
  fi
  mkdir -p "$out"
  printf '%s\n' "$key" > "$out/.done.tmp"
  mv "$out/.done.tmp" "$out/.done"
}

# --- jobs: resources per kind, a plan of concurrent jobs (python -m sedtk.jobs) ----------------------
# They read the recipe's variables cmd (local|slurm), max_jobs, jobs_conf (a conf/jobs.yaml of the
# recipe, optional) and force.
declare -gA _PLAN_KEY=()  # OUT of a planned job -> its key (what its .done will hold)
_SEDTK_PLAN=""
SEDTK_JOBS_DIR=${SEDTK_JOBS_DIR:-exp/jobs}

_jobs_opts() {
  printf '%s\n' --cmd "${cmd:-local}" --max-jobs "${max_jobs:-0}"
  [ -z "${jobs_conf:-}" ] || printf '%s\n' --jobs-conf "$jobs_conf"
}

job() {
  local gpus=0 nodes=1 cpus="" tasks=1 ddp=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --gpus) gpus=$2; shift 2 ;;
      --nodes) nodes=$2; shift 2 ;;
      --cpus) cpus=$2; shift 2 ;;
      --tasks) tasks=$2; shift 2 ;;
      --ddp) ddp=true; shift ;;
      *) break ;;
    esac
  done
  [ $# -ge 3 ] || _die_caller "job: expected KIND LOG OUT [DEP...] -- COMMAND"
  local kind=$1 log=$2 out=${3%/}
  shift 3
  local deps=() d o
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do deps+=("$1"); shift; done
  [ $# -ge 2 ] || _die_caller "job $out: expected '-- COMMAND' after the dependencies"
  shift
  if [ -n "$_SEDTK_PLAN" ]; then
    for d in "${deps[@]}"; do  # a file inside a planned output is not known before that job runs
      [ -z "${_PLAN_KEY[${d%/}]:-}" ] || continue
      for o in "${!_PLAN_KEY[@]}"; do
        if [[ "${d%/}" == "$o/"* ]] && [ "$(cat "$o/.done" 2>/dev/null)" != "${_PLAN_KEY[$o]}" ]; then
          _die_caller "job $out: its input $d lies inside $o, made by a job of this plan: name $o itself"
        fi
      done
    done
  fi
  _make_key "${deps[@]}" -- "$@"
  local key=$_KEY
  if [ -n "$_SEDTK_PLAN" ]; then
    _PLAN_KEY[$out]=$key
    printf '%s\0' @job "$kind" "$log" "$out" "$key" "$gpus" "$nodes" "$cpus" "$tasks" "$ddp" \
      "${#deps[@]}" "${deps[@]}" "$#" "$@" >> "$_SEDTK_PLAN"
    return 0
  fi
  [ "$tasks" -eq 1 ] || _die_caller "job $out: --tasks $tasks needs a plan (jobs_begin ... jobs_run)"
  local opts=()
  mapfile -t opts < <(_jobs_opts)
  ! $ddp || opts+=(--ddp)
  _run_keyed "$key" "$out" "$SEDTK_PYTHON" -m sedtk.jobs exec "${opts[@]}" --kind "$kind" --log "$log" \
    --gpus "$gpus" --nodes "$nodes" ${cpus:+--cpus "$cpus"} --plan-dir "$SEDTK_JOBS_DIR" -- "$@"
}

jobs_begin() {
  mkdir -p "$SEDTK_JOBS_DIR"
  _SEDTK_PLAN=$SEDTK_JOBS_DIR/plan
  : > "$_SEDTK_PLAN"
  _PLAN_KEY=()
  _DEP_HASH=()
}

jobs_run() {
  [ -n "$_SEDTK_PLAN" ] || _die_caller "jobs_run without jobs_begin"
  local opts=() rc=0
  mapfile -t opts < <(_jobs_opts)
  [ "${force:-false}" != true ] || opts+=(--force)
  _SEDTK_PLAN=""
  _PLAN_KEY=()
  _DEP_HASH=()
  "$SEDTK_PYTHON" -m sedtk.jobs run "$SEDTK_JOBS_DIR" "${opts[@]}" || rc=$?
  [ "$rc" -eq 0 ] || _die_caller "jobs failed (see the summary above); re-run the same command to redo them"
}

require_dir() {
  local var=$1
  local dir=${!var:-}
  [ -n "$dir" ] || _die_caller "$var is not set: edit egs/db.sh or run '$var=/path/to/corpus $0'"
  [ -d "$dir" ] || _die_caller "$var=$dir: no such directory (edit egs/db.sh or set $var in the environment)"
}

require_path() {
  local var=$1
  local path=${!var:-}
  [ -n "$path" ] || _die_caller "$var is not set: edit egs/db.sh or run '$var=/path $0'"
  [ -e "$path" ] || _die_caller "$var=$path: no such file or directory (edit egs/db.sh or set $var in the environment)"
}

# The paper's systems, stated once in Python (sedtk/systems.py: each system's configs, the stage-1
# run it starts from, the tasks it decodes, its upstream), loaded here as bash arrays:
#   system_stage1 CONF_DIR SYS   the stage-1 run (config name) SYS starts from, e.g. sys7_stage1 for
#                                sys5 (shared); empty for one-stage systems (sys6, the SSL baselines)
#   system_final CONF_DIR SYS    the run holding SYS's final model, e.g. sys7_stage2, sys6, sys1_hubert
#   system_tasks SYS             the tasks SYS decodes for its table's columns, e.g. ser_sed,asr
#   system_upstream SYS          SYS's upstream: the value of the recipe's $hubert, $wavlm or $wav2vec2
#   system_conf CONF_DIR NAME    CONF_DIR/NAME.yaml when the recipe overrides it, else the packaged
#                                sedtk/conf/paper/NAME.yaml
if ! _graph=$("$SEDTK_PYTHON" -m sedtk.systems shell 2>&1); then
  echo "error: cannot read the system graph (python -m sedtk.systems shell): $_graph" >&2
  exit 1
fi
eval "$_graph"
unset _graph

_sys_known() {
  [ -n "${SEDTK_SYS_FINAL[$1]:-}" ] && return 0
  _say 2 "error: " "system $1: not a paper system (known: $(printf "%s\n" "${!SEDTK_SYS_FINAL[@]}" | sort | tr "\n" " "))" >&2
  exit 1
}

system_stage1() { _sys_known "$2"; echo "${SEDTK_SYS_STAGE1[$2]}"; }
system_final() { _sys_known "$2"; echo "${SEDTK_SYS_FINAL[$2]}"; }
system_tasks() { _sys_known "$1"; echo "${SEDTK_SYS_TASKS[$1]}"; }

system_upstream() {
  _sys_known "$1"
  local role=${SEDTK_SYS_UPSTREAM[$1]}
  [ -n "${!role:-}" ] || _die_caller "system $1 runs on the '$role' upstream: set --$role (not set in $0)"
  echo "${!role}"
}

system_conf() {
  local conf=$1 name=$2
  if [ -f "$conf/$name.yaml" ]; then
    echo "$conf/$name.yaml"
  elif [ -f "$(_sedtk_conf_dir)/paper/$name.yaml" ]; then
    echo "$(_sedtk_conf_dir)/paper/$name.yaml"
  else
    _die_caller "config $name: neither $conf/$name.yaml nor the packaged paper/$name.yaml exists"
  fi
}

# system_is_ssl SYS: true for the SSL SER baselines (model.kind ssl_ser: no LLM, never initialised
# from an LLM model such as the SpeechCraft one).
system_is_ssl() { _sys_known "$1"; [ "${SEDTK_SYS_KIND[$1]}" = ssl_ser ]; }

# --- stages 2-4 of the corpus recipes (iemocap per fold, meld, speechcraft) ----------------------
# Every run of a system, by prefix (a fold is a prefix: exp/fold1).  They read the recipe's variables:
# conf, systems_arr (first = proposed, rest = baselines), ngpu, nnodes, decode_nj, nj, llm,
# hubert/wavlm/wav2vec2, extra, online_feats, online_opts (--set data.online_features=true or
# nothing), device, dec_opts, init_from, and call the recipe's function
#   recipe_feats DUMP SPLIT      the dump dir of data split SPLIT under DUMP (e.g. DUMP/all for IEMOCAP)

# check_systems: every name in systems_arr is a paper system whose upstream option is set (run once,
# in the recipe's own shell, before the stages: the helpers below run in subshells).
check_systems() {
  local sys
  [ "${#systems_arr[@]}" -gt 0 ] || _die_caller "--systems: no system given"
  for sys in "${systems_arr[@]}"; do
    _sys_known "$sys"
    system_upstream "$sys" > /dev/null
  done
}

# system_dump SYS: the dump root of SYS's upstream (dump/<upstream name>).
system_dump() { echo "dump/$(basename "$(system_upstream "$1")")"; }

# system_upstreams: the distinct upstreams of the recipe's systems (one dump each).
system_upstreams() {
  local sys up
  local -A seen=()
  for sys in "${systems_arr[@]}"; do
    up=$(system_upstream "$sys")
    [ -z "${seen[$up]:-}" ] || continue
    seen[$up]=1
    echo "$up"
  done
}

# system_start SYS: "RUN INIT" of SYS's first run (its stage 1, or its one stage) on this corpus,
# chosen by sedtk/systems.py (first_run) from --init-from (auto: the finished SpeechCraft run of the
# same system; none; EXP), --ablation-init (own|proposed: where Tab. 3's ablations start) and
# --speechcraft-exp; RUN is the config / experiment name (SYS's own copy of a shared stage 1 when it
# starts from another model than the system it shares it with).  The reason goes to the log
# (stderr, unless QUIET is set), a from-scratch LLM run under a loud banner.
system_start() {
  local sys=$1 out run init how note
  out=$("$SEDTK_PYTHON" -m sedtk.systems start "$sys" --init-from "${init_from:-auto}" \
    --speechcraft-exp "${speechcraft_exp:-../speechcraft/exp}" --ablation-init "${ablation_init:-own}") ||
    _die_caller "cannot choose where $sys starts (see the error above)"
  { read -r run; read -r init; read -r how; read -r note; } <<< "$out"
  if [ -z "${QUIET:-}" ]; then
    if [ "$how" = scratch ]; then
      {
        echo "########################################################################################"
        _say 1 "WARNING: " "$note"
        echo "# The paper trains on SpeechCraft (GigaSpeech-m, 739 h) before IEMOCAP / MELD: numbers of"
        echo "# this run are not comparable with its Tables 2-3 (see this recipe's README)."
        echo "########################################################################################"
      } >&2
    else
      _log_caller "$note" >&2
    fi
  fi
  echo "$run $init"
}

# system_train PREFIX TRAIN DEV SYS NAME [INIT]: one "sedtk train" job into PREFIX/NAME, on $ngpu GPUs
# of $nnodes nodes (torchrun when more than one); an SSL SER baseline (a linear head) on one GPU.
system_train() {
  local prefix=$1 train=$2 dev=$3 sys=$4 name=$5 init=${6:-} up f=() deps=() tag cfg gpus=$ngpu nodes=${nnodes:-1}
  up=$(system_upstream "$sys")
  cfg=$(system_conf "$conf" "$name")
  if ! $online_feats; then
    f=(--feats-train "$(recipe_feats "$(system_dump "$sys")" "$(basename "$train")")"
      --feats-dev "$(recipe_feats "$(system_dump "$sys")" "$(basename "$dev")")")
    deps=("${f[1]}" "${f[3]}")
  fi
  if system_is_ssl "$sys"; then gpus=1; nodes=1; fi
  tag=${prefix#exp}; tag=${tag#/}; tag=${tag:+${tag//\//_}_}
  job --gpus "$gpus" --nodes "$nodes" --ddp train "exp/log/train_$tag$name.log" "$prefix/$name" \
    "$cfg" "$train" "$dev" "${deps[@]}" ${init:+"$init"} -- \
    sedtk train --config "$cfg" --exp "$prefix/$name" ${init:+--init "$init"} \
    --train "$train" --dev "$dev" "${f[@]}" --set "model.upstream=$up" --set "model.llm=$llm" \
    "${online_opts[@]}" "${extra[@]}"
}

# systems_stage1 PREFIX TRAIN DEV: stage 2 of a recipe: every distinct stage-1 run (once each; systems
# share one when they start from the same model, system_start) and, for one-stage systems, nothing
# (they run in stage 3).
systems_stage1() {
  local sys start run init
  local -A seen=()
  for sys in "${systems_arr[@]}"; do
    [ -n "$(system_stage1 "$conf" "$sys")" ] || continue
    start=$(system_start "$sys") || exit 1
    read -r run init <<< "$start"
    if [ -n "${seen[$run]:-}" ]; then continue; fi
    seen[$run]=1
    system_train "$1" "$2" "$3" "$sys" "$run" "$init"
  done
}

# systems_stage2 PREFIX TRAIN DEV: stage 3: each system's final run, from its stage-1 run (or, for a
# one-stage system, as its first run).
systems_stage2() {
  local sys s1 final start run init
  for sys in "${systems_arr[@]}"; do
    s1=$(system_stage1 "$conf" "$sys")
    final=$(system_final "$conf" "$sys")
    if [ -n "$s1" ]; then
      start=$(QUIET=1 system_start "$sys") || exit 1
      read -r run init <<< "$start"
      system_train "$1" "$2" "$3" "$sys" "$final" "$1/$run"
    else
      start=$(system_start "$sys") || exit 1
      read -r run init <<< "$start"
      system_train "$1" "$2" "$3" "$sys" "$final" "$init"
    fi
  done
}

# systems_decode PREFIX TEST: stage 4: decode data dir TEST with every system into
# PREFIX/<final>/decode_<basename TEST>, decoding the tasks of its table's columns (system_tasks); with
# --decode-nj N > 1 as N shards, each a 1-GPU job (sedtk decode --shard), merged by one more job.
systems_decode() {
  local prefix=$1 test=$2 x sys final f=() tag out dcmd=() deps
  x=$(basename "$test")
  tag=${prefix#exp}; tag=${tag#/}; tag=${tag:+${tag//\//_}_}
  for sys in "${systems_arr[@]}"; do
    final=$(system_final "$conf" "$sys")
    out=$prefix/$final/decode_$x
    f=()
    $online_feats || f=(--feats "$(recipe_feats "$(system_dump "$sys")" "$x")")
    dcmd=(sedtk decode --model "$prefix/$final" --data "$test" "${f[@]}" --out "$out"
      --tasks "$(system_tasks "$sys")" --device "$device" "${dec_opts[@]}")
    deps=("$prefix/$final" "$test" ${f[1]:+"${f[1]}"})
    decode_job "exp/log/decode_$tag${final}_$x" "$out" "${deps[@]}" -- "${dcmd[@]}"
  done
}

# decode_job LOG_STEM OUT [DEP...] -- SEDTK_DECODE_COMMAND: one decode job on one GPU, or --decode-nj
# shards (an array of 1-GPU jobs into OUT/parts) and the job that merges them into OUT.
decode_job() {
  local stem=$1 out=$2 deps=() n=${decode_nj:-1}
  shift 2
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do deps+=("$1"); shift; done
  shift
  if [ "$n" -gt 1 ]; then
    job --tasks "$n" --gpus 1 decode "$stem.shard.JOB.log" "$out/.shards" "${deps[@]}" -- "$@" --shard "JOB/$n"
    deps=("$out/.shards")
  fi
  job --gpus 1 decode "$stem.log" "$out" "${deps[@]}" -- "$@"
}

# systems_dump SPLIT...: stage 1: a frozen feature dump of each data/SPLIT per distinct upstream (one
# GPU, $nj workers).
systems_dump() {
  local up x
  while read -r up; do
    for x in "$@"; do
      job --gpus 1 --cpus "$nj" dump "exp/log/dump_$(basename "$up")_$x.log" \
        "$(recipe_feats "dump/$(basename "$up")" "$x")" data -- \
        sedtk feats dump "data/$x" "$(recipe_feats "dump/$(basename "$up")" "$x")" --upstream "$up" \
        --nj "$nj" --device "$device"
    done
  done < <(system_upstreams)
}

# split_score SPLIT: stage 5 of the single-split recipes: score every system on data/SPLIT, t-tests
# against the baselines.
split_score() {
  local x=$1 sys hyps=() base_opts=() dirs=()
  for sys in "${systems_arr[@]}"; do
    dirs+=("exp/$(system_final "$conf" "$sys")/decode_$x")
    hyps+=(--hyp "$sys=${dirs[-1]}")
  done
  for sys in "${systems_arr[@]:1}"; do base_opts+=(--baseline "$sys"); done
  job score "exp/log/score_$x.log" "exp/score_$x" "${dirs[@]}" -- \
    sedtk score --ref "data/$x" "${hyps[@]}" "${base_opts[@]}" --out "exp/score_$x" --latex
  _log_caller "results (once the jobs have run): exp/score_$x/RESULTS.md"
}
