#!/usr/bin/env bash
# MELD on its official train/dev/test split: the MELD columns of the paper's Tables 2 and 3 (7
# emotions, UA and WER).  See README.md.
#
#   bash egs/meld/run.sh                                    # MELD location from egs/db.sh
#   bash egs/meld/run.sh --stage 2 --ngpu 4 --systems "sys7 sys4"
#   bash egs/meld/run.sh --systems "sys7 sys1 sys2 sys3"    # Tab. 2's SSL baselines (own dumps)
#
# By default (--init-from auto) every LLM system's first run starts from the finished SpeechCraft run
# of the same system in egs/speechcraft (the paper's path; sedtk/systems.py chooses, --ablation-init
# says where Tab. 3's ablations start); without it the run trains from scratch under a loud warning
# (see README.md for what each system starts from and which numbers each path compares with).
#
# Stages (public numbers; never renumbered):
#   0  data/{train,dev,test} (audio extracted from the mp4s with ffmpeg, --nj in parallel) and
#      descriptor pseudo-labels (sedtk data describe)
#   1  frozen SSL feature dump of train/dev/test per upstream (skipped with --online-feats true)
#   2  stage-1 ASR training                                           exp/<sys>_stage1
#   3  stage-2 alternating SER-SED / ASR training; one-stage systems  exp/<sys>[_stage2]
#      (Sys. 6, the SSL baselines Sys. 1-3)
#   4  decode the test set (the tasks of each system's table columns) exp/<sys>/decode_test
#   5  score with paired t-tests against the baselines                exp/score_test/
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

stage=0
stop_stage=5
nj=8                 # CPU jobs: ffmpeg extraction, descriptor measurement, feature dump workers
ngpu=1               # GPUs per training run (torchrun when > 1; the SSL baselines always 1)
nnodes=1             # nodes per training run (Slurm; torchrun rendezvous through srun when > 1)
decode_nj=2          # shards per decode (2,610 test utterances), each a 1-GPU job
cmd=${SEDTK_CMD:-local}  # local: this machine's GPUs (the local pool); slurm: sbatch
max_jobs=0           # most jobs at once (0: as many as the GPUs / Slurm allow)
jobs_conf=conf/jobs.yaml  # what each kind of job asks for, over sedtk/conf/jobs.yaml (if present)
device=cuda          # feature dump and decoding device: cuda, cuda:N or cpu
force=false
systems="sys7 sys4 sys5 sys6 sys1"  # the first is the proposed system, the rest its baselines
# shellcheck disable=SC2034  # the upstreams are read by name (system_upstream: ${!role})
hubert=${HUBERT:-facebook/hubert-large-ls960-ft}
# shellcheck disable=SC2034
wavlm=${WAVLM:-microsoft/wavlm-large}                         # Tab. 2 Sys. 2's upstream
# shellcheck disable=SC2034
wav2vec2=${WAV2VEC2:-facebook/wav2vec2-large-960h-lv60-self}  # Tab. 2 Sys. 3's upstream
llm=${LLM:-meta-llama/Llama-3.1-8B-Instruct}
online_feats=false   # true: no dump, the upstream runs inside training and decoding
init_from=auto       # first runs start from: auto (the SpeechCraft run of the same system), none, or an EXP
ablation_init=own    # Tab. 3 ablations start from: own (their own SpeechCraft run) or proposed (Sys. 7's)
speechcraft_exp=../speechcraft/exp  # where --init-from auto looks for the SpeechCraft models
train_extra=""       # more "sedtk train" options, e.g. "--set train.max_steps=10"
decode_opts="--batch-size 8"
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--ngpu N] [--systems 'sys7 sys4 sys5 sys6 sys1']
       [--init-from auto|none|EXP] [--ablation-init own|proposed] [--online-feats true] [--device cuda] [--hubert ID|PATH]
       [--wavlm ID|PATH] [--wav2vec2 ID|PATH] [--llm ID|PATH] [--train-extra '--set k=v']
       [--cmd local|slurm] [--max-jobs N] [--nnodes N] [--decode-nj N] [--force true]
Systems: python -m sedtk.systems (sys1-3 are the SSL baselines, sys2/sys3 need their own dump).
Stages: 0 data+descriptors, 1 feature dump, 2 stage-1 ASR, 3 stage-2 SER-SED/ASR, 4 decode, 5 score.
Corpus location: MELD in egs/db.sh or the environment."
parse_options "$@"

conf=conf            # a conf/NAME.yaml here overrides the packaged sedtk/conf/paper/NAME.yaml
read -r -a extra <<< "$train_extra"
read -r -a dec_opts <<< "$decode_opts"
read -r -a systems_arr <<< "$systems"
check_systems
online_opts=()
if $online_feats; then online_opts=(--set data.online_features=true); fi
recipe_feats() { echo "$1/$2"; }  # one dump per split
mkdir -p exp/log

if stage_enabled 0; then
  log "Stage 0: data prep (official splits; ffmpeg with $nj jobs) and descriptor pseudo-labels"
  require_dir MELD
  job --cpus "$nj" prep exp/log/prep.log data "$MELD" -- sedtk data prep meld "$MELD" data --nj "$nj"
  # Descriptors are measured per split dir (speakers are z-scored within the split).
  for x in train dev test; do
    job --cpus "$nj" prep "exp/log/describe_$x.log" "data/.steps/describe_$x" data -- \
      sedtk data describe "data/$x" --force --nj "$nj"
    sedtk data validate "data/$x" > /dev/null
  done
fi

jobs_begin  # stages 1-5: planned here, run concurrently by jobs_run below
if stage_enabled 1; then
  if $online_feats; then
    log "Stage 1: skipped (--online-feats true: the upstream runs inside training and decoding)"
  else
    log "Stage 1: features per upstream ($(system_upstreams | tr '\n' ' '); all layers, float16)"
    systems_dump train dev test
  fi
fi

if stage_enabled 2; then
  log "Stage 2: stage-1 ASR training (content branch)"
  systems_stage1 exp data/train data/dev
fi

if stage_enabled 3; then
  log "Stage 3: stage-2 alternating SER-SED / ASR training (and one-stage systems)"
  systems_stage2 exp data/train data/dev
fi

if stage_enabled 4; then
  log "Stage 4: decoding the test set"
  systems_decode exp data/test
fi

if stage_enabled 5; then
  log "Stage 5: scoring (baselines: ${systems_arr[*]:1})"
  split_score test
fi
jobs_run
