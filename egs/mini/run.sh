#!/usr/bin/env bash
# The sedtk demo: the whole paper end to end on a synthetic corpus, on CPU, with nothing to download.
#
#   bash egs/mini/run.sh                       # all stages (see RESULTS.md for the measured time)
#   bash egs/mini/run.sh --stage 4             # from decoding on
#   MINI_QUICK=1 bash egs/mini/run.sh          # reduced run through every stage (CI), in exp/quick/
#
# Stages (public numbers, shared by every recipe; see README.md):
#   0  synthesise the espeak-ng corpus (train/dev/test with held-out sentences) and write the tiny
#      random HuBERT and Llama checkpoints (sedtk model init-tiny)
#   1  dump the frozen upstream's features of train/dev/test
#   2  stage-1 ASR training (content branch)                          exp/<sys>_stage1
#   3  stage-2 alternating SER-SED / ASR training (descriptor branch)  exp/<sys>_stage2
#   4  decode the test set with every system, and write the constant "majority" system (chance)
#   5  score with significance tests against the baselines, write RESULTS.md, decode one wav
set -euo pipefail
cd "$(dirname "$0")"
recipe=$(pwd)
. ../../tools/recipe_common.sh

stage=0
stop_stage=5
nj=2                 # parallel jobs (espeak-ng processes, feature dump workers)
cmd=${SEDTK_CMD:-local}
force=false
quick=false          # reduced run for CI (also MINI_QUICK=1)
workdir=.            # where data/, dump/, models/, exp/ and RESULTS.md go (exp/quick when quick)
num_utts=800         # utterances synthesised; train/dev/test hold about 76/12/12 %
seed=0
upstream=fbank       # fbank, fbank-raw (no mean normalisation), or hubert: the tiny random HuBERT (README.md)
ssl_upstream=fbank-raw  # upstream of the SSL SER baseline (Sys. 1): its mean pooling of a linear
                        # projection is constant on mean-normalised fbank (see README.md)
systems="sys7 sys5 sys4 sys1"  # the first is the proposed system, the others its baselines (conf/)
train_extra=""       # more "sedtk train" options for every run, e.g. "--set train.max_steps=2"
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--quick true] [--workdir DIR]
       [--num-utts N] [--upstream fbank|fbank-raw|hubert] [--ssl-upstream fbank-raw|fbank|hubert] [--systems 'sys7 sys5 sys4 sys1'] [--train-extra '--set k=v']
       [--force true]
Stages: 0 corpus+tiny models, 1 feature dump, 2 stage-1 ASR, 3 stage-2 SER-SED/ASR, 4 decode, 5 score.
MINI_QUICK=1 runs a reduced demo in exp/quick/ (CI)."

[ "${MINI_QUICK:-0}" = 1 ] && quick=true
parse_options "$@"

if $quick; then
  [ "$workdir" = . ] && workdir=exp/quick
  [ "$systems" = "sys7 sys5 sys4 sys1" ] && systems="sys7 sys5"
  num_utts=48
  train_extra="--set train.epochs=1 --set train.max_steps=3 --set train.dev_max_utts=4 $train_extra"
fi
# Tiny models on a few cores: one thread per process is far faster than contended OpenMP threads.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

mkdir -p "$workdir"
cd "$workdir"
conf=$recipe/conf
data=data/synth
models=$(pwd)/models  # absolute: the trained model records these paths (sedtk decode --wav anywhere)
# upstream_path NAME: the value of model.upstream for an upstream name of this recipe
upstream_path() {
  case "$1" in
    fbank | fbank-raw) echo "$1" ;;
    hubert) echo "$models/hubert" ;;
    *) die "upstreams are fbank, fbank-raw or hubert, got '$1'" ;;
  esac
}
up=$(upstream_path "$upstream")
upstream_path "$ssl_upstream" > /dev/null
read -r -a extra <<< "$train_extra"
read -r -a systems_arr <<< "$systems"
proposed=${systems_arr[0]}
# sys_upstream SYS: the upstream name SYS runs on (the SSL SER baselines: $ssl_upstream)
sys_upstream() { if system_is_ssl "$1"; then echo "$ssl_upstream"; else echo "$upstream"; fi; }
# set_sys_opts SYS: sys_train_opts (sedtk train options) and sys_deps (its inputs) for SYS
set_sys_opts() {
  local u
  u=$(sys_upstream "$1")
  sys_dump=dump/$u
  sys_train_opts=(--train "$data/train" --dev "$data/dev" --feats-train "$sys_dump/train"
    --feats-dev "$sys_dump/dev" --set "model.upstream=$(upstream_path "$u")" --set "model.llm=$models/llm"
    "${extra[@]}")
  sys_deps=("$data/train" "$data/dev" "$sys_dump/train" "$sys_dump/dev" "$models")
}
# Inputs of a step named by their files, not their folders: "sedtk score" caches measurements in the
# reference dir (descriptor_feats.tsv) and evidence in the decode dirs, which must not redo the steps.
data_files() { local f; for f in wav.scp text utt2emo utt2desc utt2attr; do [ -e "$1/$f" ] && echo "$1/$f"; done; true; }
decode_files() { local d f; for d in "$@"; do for f in utt2emo utt2emo_post text utt2desc; do [ -e "$d/$f" ] && echo "$d/$f"; done; done; true; }
declare -A dump_ups=()
for sys in "${systems_arr[@]}"; do dump_ups[$(sys_upstream "$sys")]=1; done
timing=exp/timing.tsv
mkdir -p exp/log

# The wall time of each stage, for RESULTS.md (one line per stage; a re-run replaces it).
stage_t0=0
begin_stage() { stage_t0=$SECONDS; log "Stage $1: $2"; }
end_stage() {
  touch "$timing"
  { grep -v "^$1	" "$timing" || true; printf '%s\t%s\t%s\n' "$1" $((SECONDS - stage_t0)) "$2"; } \
    | sort -n > "$timing.tmp"
  mv "$timing.tmp" "$timing"
}

if stage_enabled 0; then
  begin_stage 0 "synthetic corpus and tiny models"
  run_step "$data" -- sedtk data synth "$data" --num-utts "$num_utts" --seed "$seed" --nj "$nj" --split
  for x in train dev test; do sedtk data validate "$data/$x"; done
  run_step "$models" -- sedtk model init-tiny "$models" --seed "$seed"
  end_stage 0 "synthetic corpus and tiny models"
fi

if stage_enabled 1; then
  begin_stage 1 "feature dump (${!dump_ups[*]})"
  for u in "${!dump_ups[@]}"; do
    for x in train dev test; do
      mapfile -t deps < <(data_files "$data/$x")
      job --cpus "$nj" dump "exp/log/dump_${u}_$x.log" "dump/$u/$x" "${deps[@]}" "$models" -- \
        sedtk feats dump "$data/$x" "dump/$u/$x" --upstream "$(upstream_path "$u")" --nj "$nj"
    done
  done
  end_stage 1 "feature dump (${!dump_ups[*]})"
fi


if stage_enabled 2; then
  begin_stage 2 "stage-1 ASR training"
  declare -A trained=()
  for sys in "${systems_arr[@]}"; do
    s1=$(system_stage1 "$conf" "$sys")
    if [ -z "$s1" ] || [ -n "${trained[$s1]:-}" ]; then continue; fi  # no stage 1, or shared and done
    trained[$s1]=1
    set_sys_opts "$sys"
    job train "exp/log/train_$s1.log" "exp/$s1" "$conf/$s1.yaml" "${sys_deps[@]}" -- \
      sedtk train --config "$conf/$s1.yaml" --exp "exp/$s1" "${sys_train_opts[@]}"
  done
  end_stage 2 "stage-1 ASR training"
fi

if stage_enabled 3; then
  begin_stage 3 "stage-2 SER-SED/ASR training"
  for sys in "${systems_arr[@]}"; do
    s1=$(system_stage1 "$conf" "$sys")
    final=$(system_final "$conf" "$sys")
    init=()
    [ -n "$s1" ] && init=(--init "exp/$s1")
    set_sys_opts "$sys"
    job train "exp/log/train_$final.log" "exp/$final" "$conf/$final.yaml" "${sys_deps[@]}" ${s1:+"exp/$s1"} -- \
      sedtk train --config "$conf/$final.yaml" --exp "exp/$final" "${init[@]}" "${sys_train_opts[@]}"
  done
  end_stage 3 "stage-2 SER-SED/ASR training"
fi

if stage_enabled 4; then
  begin_stage 4 "decoding"
  for sys in "${systems_arr[@]}"; do
    final=$(system_final "$conf" "$sys")
    sys_dump=dump/$(sys_upstream "$sys")
    mapfile -t deps < <(data_files "$data/test")
    job decode "exp/log/decode_$final.log" "exp/$final/decode_test" "exp/$final" "${deps[@]}" "$sys_dump/test" -- \
      sedtk decode --model "exp/$final" --data "$data/test" --feats "$sys_dump/test" \
      --out "exp/$final/decode_test" --batch-size 16 --device cpu
  done
  mapfile -t deps < <(data_files "$data/train"; data_files "$data/test")
  run_step exp/majority/decode_test "${deps[@]}" "$recipe/local/majority_baseline.py" -- \
    "$SEDTK_PYTHON" "$recipe/local/majority_baseline.py" "$data/train" "$data/test" exp/majority/decode_test
  end_stage 4 "decoding"
fi

if stage_enabled 5; then
  begin_stage 5 "scoring, RESULTS.md and one explained decode"
  hyps=()
  baselines=()
  for sys in "${systems_arr[@]}" majority; do
    if [ "$sys" = majority ]; then dir=exp/majority/decode_test; else dir=exp/$(system_final "$conf" "$sys")/decode_test; fi
    hyps+=(--hyp "$sys=$dir")
    [ "$sys" = "$proposed" ] || baselines+=(--baseline "$sys")
  done
  # The evidence check's bands, learned from the train split's known settings (issue 17); the score
  # checks the test descriptions' claims by them and grades the checker against the test truth.
  cal=exp/calibration/calibration.json
  mapfile -t deps < <(data_files "$data/train")
  run_step exp/calibration "${deps[@]}" -- sedtk data calibrate "$data/train" --out "$cal" --nj "$nj"
  mapfile -t deps < <(data_files "$data/test"; decode_files exp/*/decode_test)
  run_step exp/score_test "${deps[@]}" "$cal" -- \
    sedtk score --ref "$data/test" "${hyps[@]}" "${baselines[@]}" --out exp/score_test --calibration "$cal"
  # The browsable report of the proposed system (issue 10): every test utterance with its audio,
  # transcript, description claims and emotion posterior; open exp/report_test.html in a browser.
  proposed_dir=exp/$(system_final "$conf" "$proposed")/decode_test
  sedtk report --decode "$proposed_dir" --score exp/score_test -o exp/report_test.html

  # What a new user wants to see first: one wav in, transcript + descriptors + emotion out.  The model
  # is passed explicitly (works whatever the install), and recorded as the default model of
  # "sedtk decode" without --model (in $XDG_CONFIG_HOME/sedtk/default_model or $SEDTK_CONFIG_DIR).
  wav=$(head -n 1 "$data/test/wav.scp" | cut -d' ' -f2-)
  model=$(pwd)/exp/$(system_final "$conf" "$proposed")
  log "sedtk decode --wav $wav --model $model"
  sedtk decode --wav "$wav" --model "$model" --device cpu
  sedtk decode --wav "$wav" --model "$model" --device cpu --json > exp/example_decode.json
  "$SEDTK_PYTHON" -c 'import sys; from sedtk.decode.model_ref import record_default_model as r
print("default model for sedtk decode recorded in", r(sys.argv[1]))' "$model"
  end_stage 5 "scoring, RESULTS.md and one explained decode"

  describe=(--describe "sys7=proposed: FD+SER+SED+ASR, alternating" --describe "sys4=no FD: SER+SED+ASR"
    --describe "sys5=FD+SER+ASR, no descriptors" --describe "sys6=FD+SER+SED, one stage, no ASR"
    --describe "sys1=SSL SER baseline: weighted sum, mean pooling, linear (+CTC); no LLM"
    --describe "majority=constant answer: chance level")
  "$SEDTK_PYTHON" "$recipe/local/write_results.py" exp/score_test/score.json RESULTS.md \
    --timing "$timing" --data "$data/train" "$data/dev" "$data/test" --upstream "$up" \
    --chance majority --example exp/example_decode.json "${describe[@]}"
  log "results: $(pwd)/RESULTS.md (scores and significance tests: exp/score_test/RESULTS.md)"
fi
