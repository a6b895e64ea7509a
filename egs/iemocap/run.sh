#!/usr/bin/env bash
# IEMOCAP, 4 classes (exc merged into hap), leave-one-session-out 5-fold cross-validation: the SER
# and ASR columns of the paper's Tables 2 and 3.  See README.md.
#
#   bash egs/iemocap/run.sh                                 # IEMOCAP location from egs/db.sh
#   bash egs/iemocap/run.sh --stage 2 --ngpu 2 --folds "1 2"
#   bash egs/iemocap/run.sh --init-from ../speechcraft/exp/sys7_stage2
#
# Stages (public numbers; never renumbered):
#   0  data/fold{1..5}/{train,dev,test} + data/all; descriptor pseudo-labels (sedtk data describe)
#   1  frozen HuBERT feature dump of data/all (skipped with --online-feats true)
#   2  stage-1 ASR training per fold                                 exp/fold<k>/<sys>_stage1
#   3  stage-2 alternating SER-SED / ASR training (one-stage systems) exp/fold<k>/<sys>[_stage2]
#   4  decode each fold's test session                               .../decode_test
#   5  score per fold and pooled over the folds, paired t-tests vs the baselines  exp/score/
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

stage=0
stop_stage=5
nj=8                 # CPU jobs: audio probing, descriptor measurement, feature dump workers
ngpu=1               # GPUs per training run (torchrun when > 1)
cmd=${SEDTK_CMD:-local}
device=cuda          # feature dump and decoding device: cuda, cuda:N or cpu
force=false
folds="1 2 3 4 5"
classes=4class       # sedtk data prep --classes
systems="sys7 sys4 sys5 sys6"  # the first is the proposed system, the rest its baselines (conf/)
hubert=${HUBERT:-facebook/hubert-large-ls960-ft}
llm=${LLM:-meta-llama/Llama-3.1-8B-Instruct}
online_feats=false   # true: no dump, HuBERT runs inside training and decoding
init_from=""         # start every stage-1 run from this experiment (e.g. the SpeechCraft model)
train_extra=""       # more "sedtk train" options, e.g. "--set train.max_steps=10"
decode_opts="--batch-size 8"
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--ngpu N] [--folds '1 2 3 4 5']
       [--systems 'sys7 sys4 sys5 sys6'] [--init-from EXP] [--online-feats true] [--device cuda]
       [--hubert ID|PATH] [--llm ID|PATH] [--train-extra '--set k=v'] [--cmd local|slurm] [--force true]
Stages: 0 data+descriptors, 1 feature dump, 2 stage-1 ASR, 3 stage-2 SER-SED/ASR, 4 decode, 5 score.
Corpus location: IEMOCAP in egs/db.sh or the environment."
parse_options "$@"

conf=conf
dump=dump/$(basename "$hubert")
read -r -a extra <<< "$train_extra"
read -r -a dec_opts <<< "$decode_opts"
read -r -a systems_arr <<< "$systems"
launch=("$SEDTK_TOOLS/launch.sh" --cmd "$cmd")
model_opts=(--set "model.upstream=$hubert" --set "model.llm=$llm")
feats_of() { $online_feats || echo "$dump/all"; }  # the dump that holds every fold's utterances
if $online_feats; then model_opts+=(--set data.online_features=true); fi
mkdir -p exp/log

if stage_enabled 0; then
  log "Stage 0: data prep ($classes, folds from sessions) and descriptor pseudo-labels"
  require_dir IEMOCAP
  run_step data "$IEMOCAP" -- sedtk data prep iemocap "$IEMOCAP" data --classes "$classes" --nj "$nj"
  # Descriptors once over every utterance, then into each fold (speakers never straddle a split).
  run_step data/.steps/describe data -- sedtk data describe data/all --force --nj "$nj"
  run_step data/.steps/copy_descriptors data/.steps/describe -- \
    "$SEDTK_PYTHON" local/copy_descriptors.py data/all data/fold*/{train,dev,test}
  for d in data/all data/fold*/{train,dev,test}; do sedtk data validate "$d" > /dev/null; done
fi

if stage_enabled 1; then
  if $online_feats; then
    log "Stage 1: skipped (--online-feats true: HuBERT runs inside training and decoding)"
  else
    log "Stage 1: $hubert features of data/all (all layers, float16; about 9 GB per audio hour)"
    run_step "$dump/all" data -- \
      "${launch[@]}" --gpus 1 --cpus "$nj" exp/log/dump_all.log -- \
      sedtk feats dump data/all "$dump/all" --upstream "$hubert" --nj "$nj" --device "$device"
  fi
fi

# train_run FOLD CONF_NAME EXP_NAME [INIT]: one "sedtk train" run of one fold.
train_run() {
  local k=$1 name=$2 out=$3 init=${4:-} feats=() deps=()
  local f
  f=$(feats_of)
  [ -n "$f" ] && feats=(--feats-train "$f" --feats-dev "$f") && deps=("$f")
  [ -n "$init" ] && deps+=("$init")
  # shellcheck disable=SC2046
  run_step "exp/fold$k/$out" "$conf/$name.yaml" "data/fold$k/train" "data/fold$k/dev" "${deps[@]}" -- \
    "${launch[@]}" --gpus "$ngpu" "exp/log/train_fold${k}_$out.log" -- \
    $(sedtk_train_cmd "$ngpu") --config "$conf/$name.yaml" --exp "exp/fold$k/$out" ${init:+--init "$init"} \
    --train "data/fold$k/train" --dev "data/fold$k/dev" "${feats[@]}" "${model_opts[@]}" "${extra[@]}"
}

if stage_enabled 2; then
  log "Stage 2: stage-1 ASR training (content branch), folds: $folds"
  for k in $folds; do
    declare -A done_s1=()
    for sys in "${systems_arr[@]}"; do
      s1=$(system_stage1 "$conf" "$sys")
      [ -n "$s1" ] && [ -z "${done_s1[$s1]:-}" ] || continue
      done_s1[$s1]=1
      train_run "$k" "$s1" "$s1" "$init_from"
    done
    unset done_s1
  done
fi

if stage_enabled 3; then
  log "Stage 3: stage-2 alternating SER-SED / ASR training (and one-stage systems), folds: $folds"
  for k in $folds; do
    for sys in "${systems_arr[@]}"; do
      s1=$(system_stage1 "$conf" "$sys")
      final=$(system_final "$conf" "$sys")
      train_run "$k" "$final" "$final" "${s1:+exp/fold$k/$s1}"
    done
  done
fi

if stage_enabled 4; then
  log "Stage 4: decoding each fold's test session"
  for k in $folds; do
    for sys in "${systems_arr[@]}"; do
      final=$(system_final "$conf" "$sys")
      f=$(feats_of)
      run_step "exp/fold$k/$final/decode_test" "exp/fold$k/$final" "data/fold$k/test" ${f:+"$f"} -- \
        "${launch[@]}" --gpus 1 "exp/log/decode_fold${k}_$final.log" -- \
        sedtk decode --model "exp/fold$k/$final" --data "data/fold$k/test" ${f:+--feats "$f"} \
        --out "exp/fold$k/$final/decode_test" --device "$device" "${dec_opts[@]}"
    done
  done
fi

if stage_enabled 5; then
  log "Stage 5: scoring per fold and pooled over folds $folds (baselines: ${systems_arr[*]:1})"
  baselines=()
  for sys in "${systems_arr[@]:1}"; do baselines+=(--baseline "$sys"); done
  refs=()
  pooled=()
  for k in $folds; do refs+=(--ref "data/fold$k/test"); done
  for sys in "${systems_arr[@]}"; do
    final=$(system_final "$conf" "$sys")
    dirs=()
    for k in $folds; do dirs+=("exp/fold$k/$final/decode_test"); done
    pooled+=(--hyp "$sys=$(IFS=,; echo "${dirs[*]}")")
  done
  for k in $folds; do
    hyps=()
    for sys in "${systems_arr[@]}"; do hyps+=(--hyp "$sys=exp/fold$k/$(system_final "$conf" "$sys")/decode_test"); done
    run_step "exp/score/fold$k" exp/fold"$k"/*/decode_test -- \
      sedtk score --ref "data/fold$k/test" "${hyps[@]}" "${baselines[@]}" --out "exp/score/fold$k"
  done
  run_step exp/score/pooled exp/fold*/*/decode_test -- \
    sedtk score "${refs[@]}" "${pooled[@]}" "${baselines[@]}" --out exp/score/pooled --latex
  log "pooled results: exp/score/pooled/RESULTS.md (per fold: exp/score/fold<k>/RESULTS.md)"
fi
