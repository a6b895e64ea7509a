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
#                              line (without "--nj N": the number of jobs never changes a result) and
#                              the content of each DEP: a file, a YAML config together with every
#                              "base:" it inherits, or a directory (its .done marker when it has one,
#                              else its top-level files: a Kaldi data dir).  A changed config or input
#                              redoes the step; "--force true" redoes every step.
#                              A finished output made from other inputs is moved to OUT.old first;
#                              an unfinished one is left for COMMAND to resume (sedtk train does).
#   system_stage1 / system_final CONF_DIR SYS
#                              the stage-1 and final experiment names of a paper system (see below)
#   require_dir VAR            exit with a clear message unless the directory named by $VAR exists
#   require_path VAR           the same for a file or a directory
#   sedtk_train_cmd NGPU       the command that starts "sedtk train" on NGPU GPUs (torchrun when > 1)
#   split_stage1 [INIT] / split_stage2 / split_decode SPLIT / split_score SPLIT
#                              stages 2-5 of the single-split recipes (meld, speechcraft); see below
#
# Recipes use them like this (see egs/mini/run.sh):
#   . ../../tools/recipe_common.sh
#   stage=0; stop_stage=5; nj=4; force=false
#   parse_options "$@"
#   if stage_enabled 0; then log "Stage 0: data prep"; run_step data data.yaml -- sedtk data ...; fi

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
_sedtk_conf_dir() {
  if [ -z "${_SEDTK_CONF_DIR:-}" ]; then
    _SEDTK_CONF_DIR=$("$SEDTK_PYTHON" -c 'import os, sedtk; print(os.path.join(os.path.dirname(sedtk.__file__), "conf"))' \
      2>/dev/null || true)
  fi
  echo "$_SEDTK_CONF_DIR"
}

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
  elif [ -d "$dep" ]; then
    echo "dir $dep"
    if [ -f "$dep/.done" ]; then
      cat "$dep/.done"
    else
      find "$dep" -maxdepth 1 -type f ! -name '.*' -size -64M -print0 | sort -z | xargs -0 -r sha256sum
    fi
  else
    echo "value $dep"
  fi
}

_step_key() {
  local deps=() cmd=() skip=false a
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do deps+=("$1"); shift; done
  shift
  for a in "$@"; do
    if $skip; then skip=false; continue; fi
    case "$a" in
      --nj) skip=true; continue ;;
      --nj=*) continue ;;
    esac
    cmd+=("$a")
  done
  {
    printf '%q ' "${cmd[@]}"; echo
    for a in "${deps[@]}"; do _hash_dep "$a"; done
  } | sha256sum | cut -d' ' -f1
}

run_step() {
  local out=$1; shift
  local deps=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do deps+=("$1"); shift; done
  [ $# -ge 2 ] || _die_caller "run_step $out: expected '-- COMMAND' after the dependencies"
  shift
  local key
  key=$(_step_key "${deps[@]}" -- "$@")
  if [ "${force:-false}" != true ] && [ -f "$out/.done" ] && [ "$(cat "$out/.done")" = "$key" ]; then
    _log_caller "skip $out: done with the same config and inputs (--force true redoes it)"
    return 0
  fi
  # A finished output made from other inputs (or --force) is moved aside, so that the command starts
  # afresh instead of resuming it; an unfinished one (no marker) is left for the command to resume.
  if [ -e "$out" ] && { [ -f "$out/.done" ] || [ "${force:-false}" = true ]; }; then
    rm -rf "$out.old"
    mv "$out" "$out.old"
    _log_caller "moved the previous $out to $out.old (its config or inputs changed, or --force)"
  fi
  _log_caller "run: $*"
  if ! "$@"; then
    _die_caller "failed: $*"
  fi
  mkdir -p "$out"
  printf '%s\n' "$key" > "$out/.done.tmp"
  mv "$out/.done.tmp" "$out/.done"
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

# The experiments of a paper system, from the recipe's conf files (names as in sedtk/conf/paper):
#   system_stage1 CONF_DIR SYS   the stage-1 experiment SYS starts from: SYS_stage1 when
#                                CONF_DIR/SYS_stage1.yaml exists, else sys7_stage1 (Sys. 5's and the
#                                Tab. 3 two-stage system's stage 1 is Sys. 7's); empty for one-stage
#                                systems (CONF_DIR/SYS.yaml, e.g. Sys. 6)
#   system_final CONF_DIR SYS    the experiment holding SYS's final model: SYS_stage2 or SYS
system_stage1() {
  local conf=$1 sys=$2
  if [ -f "$conf/$sys.yaml" ]; then
    echo ""
  elif [ -f "$conf/${sys}_stage1.yaml" ]; then
    echo "${sys}_stage1"
  elif [ -f "$conf/${sys}_stage2.yaml" ]; then
    echo "sys7_stage1"
  else
    _die_caller "system $sys: neither $conf/$sys.yaml nor $conf/${sys}_stage2.yaml exists"
  fi
}

system_final() {
  local conf=$1 sys=$2
  if [ -f "$conf/$sys.yaml" ]; then
    echo "$sys"
  elif [ -f "$conf/${sys}_stage2.yaml" ]; then
    echo "${sys}_stage2"
  else
    _die_caller "system $sys: neither $conf/$sys.yaml nor $conf/${sys}_stage2.yaml exists"
  fi
}

# "sedtk train" on one device, or torchrun with one process per GPU.
sedtk_train_cmd() {
  local ngpu=${1:-1}
  if [ "$ngpu" -gt 1 ]; then
    echo "torchrun --standalone --nproc_per_node $ngpu $(command -v sedtk) train"
  else
    echo "sedtk train"
  fi
}

# --- stages 2-5 of the single-split recipes (meld, speechcraft) ---------------------------------
# These read the recipe's variables: conf, systems_arr (first = proposed, rest = baselines),
# launch, ngpu, model_opts, extra, train_deps, feats, online_feats, dump, device, dec_opts.

# split_train_run CONF_NAME [INIT]: one "sedtk train" run into exp/CONF_NAME on data/{train,dev}.
split_train_run() {
  local name=$1 init=${2:-}
  # shellcheck disable=SC2046
  run_step "exp/$name" "$conf/$name.yaml" "${train_deps[@]}" ${init:+"$init"} -- \
    "${launch[@]}" --gpus "$ngpu" "exp/log/train_$name.log" -- \
    $(sedtk_train_cmd "$ngpu") --config "$conf/$name.yaml" --exp "exp/$name" ${init:+--init "$init"} \
    --train data/train --dev data/dev "${feats[@]}" "${model_opts[@]}" "${extra[@]}"
}

# split_stage1 [INIT]: stage 2 of a recipe: every distinct stage-1 run of the systems (once each).
split_stage1() {
  local sys s1
  local -A seen=()
  for sys in "${systems_arr[@]}"; do
    s1=$(system_stage1 "$conf" "$sys")
    [ -n "$s1" ] && [ -z "${seen[$s1]:-}" ] || continue
    seen[$s1]=1
    split_train_run "$s1" "${1:-}"
  done
}

# split_stage2: stage 3 of a recipe: each system's final run, initialised from its stage-1 run.
split_stage2() {
  local sys s1
  for sys in "${systems_arr[@]}"; do
    s1=$(system_stage1 "$conf" "$sys")
    split_train_run "$(system_final "$conf" "$sys")" "${s1:+exp/$s1}"
  done
}

# split_decode SPLIT: stage 4: decode data/SPLIT with every system into exp/<final>/decode_SPLIT.
split_decode() {
  local x=$1 sys final f
  for sys in "${systems_arr[@]}"; do
    final=$(system_final "$conf" "$sys")
    f=()
    $online_feats || f=(--feats "$dump/$x")
    run_step "exp/$final/decode_$x" "exp/$final" "data/$x" ${f[1]:+"${f[1]}"} -- \
      "${launch[@]}" --gpus 1 "exp/log/decode_$final.log" -- \
      sedtk decode --model "exp/$final" --data "data/$x" "${f[@]}" --out "exp/$final/decode_$x" \
      --device "$device" "${dec_opts[@]}"
  done
}

# split_score SPLIT: stage 5: score every system on data/SPLIT, t-tests against the baselines.
split_score() {
  local x=$1 sys hyps=() baselines=()
  for sys in "${systems_arr[@]}"; do hyps+=(--hyp "$sys=exp/$(system_final "$conf" "$sys")/decode_$x"); done
  for sys in "${systems_arr[@]:1}"; do baselines+=(--baseline "$sys"); done
  run_step "exp/score_$x" exp/*/"decode_$x" -- \
    sedtk score --ref "data/$x" "${hyps[@]}" "${baselines[@]}" --out "exp/score_$x" --latex
  _log_caller "results: exp/score_$x/RESULTS.md"
}
