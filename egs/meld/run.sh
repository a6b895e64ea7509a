#!/usr/bin/env bash
# MELD on its official train/dev/test split: the MELD columns of the paper's Tables 2 and 3 (7
# emotions, UA and WER).  See README.md.
#
#   bash egs/meld/run.sh                                    # MELD location from egs/db.sh
#   bash egs/meld/run.sh --stage 2 --ngpu 4 --systems "sys7 sys4"
#
# Stages (public numbers; never renumbered):
#   0  data/{train,dev,test} (audio extracted from the mp4s with ffmpeg, --nj in parallel) and
#      descriptor pseudo-labels (sedtk data describe)
#   1  frozen HuBERT feature dump of train/dev/test (skipped with --online-feats true)
#   2  stage-1 ASR training                                           exp/<sys>_stage1
#   3  stage-2 alternating SER-SED / ASR training (one-stage systems) exp/<sys>[_stage2]
#   4  decode the test set                                            exp/<sys>/decode_test
#   5  score with paired t-tests against the baselines                exp/score_test/
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

stage=0
stop_stage=5
nj=8                 # CPU jobs: ffmpeg extraction, descriptor measurement, feature dump workers
ngpu=1               # GPUs per training run (torchrun when > 1)
cmd=${SEDTK_CMD:-local}
device=cuda          # feature dump and decoding device: cuda, cuda:N or cpu
force=false
systems="sys7 sys4 sys5 sys6"  # the first is the proposed system, the rest its baselines (conf/)
hubert=${HUBERT:-facebook/hubert-large-ls960-ft}
llm=${LLM:-meta-llama/Llama-3.1-8B-Instruct}
online_feats=false   # true: no dump, HuBERT runs inside training and decoding
init_from=""         # start every stage-1 run from this experiment (e.g. the SpeechCraft model)
train_extra=""       # more "sedtk train" options, e.g. "--set train.max_steps=10"
decode_opts="--batch-size 8"
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--ngpu N] [--systems 'sys7 sys4 sys5 sys6']
       [--init-from EXP] [--online-feats true] [--device cuda] [--hubert ID|PATH] [--llm ID|PATH]
       [--train-extra '--set k=v'] [--cmd local|slurm] [--force true]
Stages: 0 data+descriptors, 1 feature dump, 2 stage-1 ASR, 3 stage-2 SER-SED/ASR, 4 decode, 5 score.
Corpus location: MELD in egs/db.sh or the environment."
parse_options "$@"

conf=conf
dump=dump/$(basename "$hubert")
read -r -a extra <<< "$train_extra"
read -r -a dec_opts <<< "$decode_opts"
read -r -a systems_arr <<< "$systems"
launch=("$SEDTK_TOOLS/launch.sh" --cmd "$cmd")
model_opts=(--set "model.upstream=$hubert" --set "model.llm=$llm")
if $online_feats; then model_opts+=(--set data.online_features=true); fi
mkdir -p exp/log

if stage_enabled 0; then
  log "Stage 0: data prep (official splits; ffmpeg with $nj jobs) and descriptor pseudo-labels"
  require_dir MELD
  run_step data "$MELD" -- sedtk data prep meld "$MELD" data --nj "$nj"
  # Descriptors are measured per split dir (speakers are z-scored within the split).
  for x in train dev test; do
    run_step "data/.steps/describe_$x" data -- sedtk data describe "data/$x" --force --nj "$nj"
    sedtk data validate "data/$x" > /dev/null
  done
fi

if stage_enabled 1; then
  if $online_feats; then
    log "Stage 1: skipped (--online-feats true: HuBERT runs inside training and decoding)"
  else
    log "Stage 1: $hubert features (all layers, float16; about 9 GB per audio hour)"
    for x in train dev test; do
      run_step "$dump/$x" data -- "${launch[@]}" --gpus 1 --cpus "$nj" "exp/log/dump_$x.log" -- \
        sedtk feats dump "data/$x" "$dump/$x" --upstream "$hubert" --nj "$nj" --device "$device"
    done
  fi
fi

feats=()
$online_feats || feats=(--feats-train "$dump/train" --feats-dev "$dump/dev")
train_deps=(data/train data/dev)
$online_feats || train_deps+=("$dump/train" "$dump/dev")

if stage_enabled 2; then
  log "Stage 2: stage-1 ASR training (content branch)"
  split_stage1 "$init_from"
fi

if stage_enabled 3; then
  log "Stage 3: stage-2 alternating SER-SED / ASR training (and one-stage systems)"
  split_stage2
fi

if stage_enabled 4; then
  log "Stage 4: decoding the test set"
  split_decode test
fi

if stage_enabled 5; then
  log "Stage 5: scoring (baselines: ${systems_arr[*]:1})"
  split_score test
fi
