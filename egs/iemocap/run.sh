#!/usr/bin/env bash
# IEMOCAP, 4 classes (exc merged into hap), leave-one-session-out 5-fold cross-validation: the SER
# and ASR columns of the paper's Tables 2 and 3.  See README.md.
#
#   bash egs/iemocap/run.sh                                 # IEMOCAP location from egs/db.sh
#   bash egs/iemocap/run.sh --stage 2 --folds "1 2"
#   bash egs/iemocap/run.sh --cmd slurm --max-jobs 16               # every job through sbatch
#   bash egs/iemocap/run.sh --systems "sys7 sys1 sys2 sys3"  # Tab. 2's SSL baselines (own dumps)
#
# By default (--init-from auto) every LLM system's first run starts from the finished SpeechCraft run
# of the same system in egs/speechcraft (the paper's path; sedtk/systems.py chooses, --ablation-init
# says where Tab. 3's ablations start); without it the run trains from scratch under a loud warning
# (see README.md for what each system starts from and which numbers each path compares with).
#
# Stages (public numbers; never renumbered):
#   0  data/fold{1..5}/{train,dev,test} + data/all; descriptor pseudo-labels (sedtk data describe)
#   1  frozen SSL feature dump of data/all per upstream (skipped with --online-feats true)
#   2  stage-1 ASR training per fold                                 exp/fold<k>/<sys>_stage1
#   3  stage-2 alternating SER-SED / ASR training; one-stage systems  exp/fold<k>/<sys>[_stage2]
#      (Sys. 6, the SSL baselines Sys. 1-3)
#   4  decode each fold's test session (the tasks of each system's table columns)  .../decode_test
#   5  score per fold and pooled over the folds, paired t-tests vs the baselines  exp/score/
#
# Stages 1-5 are planned first, then run as one graph of jobs: the 5 folds x systems are independent
# and run concurrently (each training chain on --ngpu GPUs, by default one: eight chains fill an 8-GPU
# node), each job as soon as what it reads is finished; --cmd slurm submits them with
# --dependency=afterok.  What each job asks for: sedtk/conf/jobs.yaml (conf/jobs.yaml here overrides).
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

stage=0
stop_stage=5
nj=8                 # CPU jobs: audio probing, descriptor measurement, feature dump workers
ngpu=1               # GPUs per training run (torchrun when > 1; the SSL baselines always 1)
nnodes=1             # nodes per training run (Slurm; torchrun rendezvous through srun when > 1)
decode_nj=1          # shards per decode, each a 1-GPU job (the 25 decodes already run side by side)
cmd=${SEDTK_CMD:-local}  # local: this machine's GPUs (the local pool); slurm: sbatch
max_jobs=0           # most jobs at once (0: as many as the GPUs / Slurm allow)
jobs_conf=conf/jobs.yaml  # what each kind of job asks for, over sedtk/conf/jobs.yaml (if present)
device=cuda          # feature dump and decoding device: cuda, cuda:N or cpu
force=false
folds="1 2 3 4 5"
classes=4class       # sedtk data prep --classes
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
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--ngpu N] [--folds '1 2 3 4 5']
       [--systems 'sys7 sys4 sys5 sys6 sys1'] [--init-from auto|none|EXP] [--ablation-init own|proposed] [--online-feats true]
       [--device cuda] [--hubert ID|PATH] [--wavlm ID|PATH] [--wav2vec2 ID|PATH] [--llm ID|PATH]
       [--train-extra '--set k=v'] [--cmd local|slurm] [--max-jobs N] [--nnodes N] [--decode-nj N]
       [--force true]
Systems: python -m sedtk.systems (sys1-3 are the SSL baselines, sys2/sys3 need their own dump).
Stages: 0 data+descriptors, 1 feature dump, 2 stage-1 ASR, 3 stage-2 SER-SED/ASR, 4 decode, 5 score.
Corpus location: IEMOCAP in egs/db.sh or the environment."
parse_options "$@"

conf=conf            # a conf/NAME.yaml here overrides the packaged sedtk/conf/paper/NAME.yaml
read -r -a extra <<< "$train_extra"
read -r -a dec_opts <<< "$decode_opts"
read -r -a systems_arr <<< "$systems"
check_systems
online_opts=()
if $online_feats; then online_opts=(--set data.online_features=true); fi
recipe_feats() { echo "$1/all"; }  # one dump of data/all serves every fold
mkdir -p exp/log

if stage_enabled 0; then
  log "Stage 0: data prep ($classes, folds from sessions) and descriptor pseudo-labels"
  require_dir IEMOCAP
  job --cpus "$nj" prep exp/log/prep.log data "$IEMOCAP" -- \
    sedtk data prep iemocap "$IEMOCAP" data --classes "$classes" --nj "$nj"
  # Descriptors once over every utterance, then into each fold (speakers never straddle a split).
  job --cpus "$nj" prep exp/log/describe.log data/.steps/describe data -- sedtk data describe data/all --force --nj "$nj"
  job prep exp/log/copy_descriptors.log data/.steps/copy_descriptors data/.steps/describe -- \
    "$SEDTK_PYTHON" local/copy_descriptors.py data/all data/fold*/{train,dev,test}
  for d in data/all data/fold*/{train,dev,test}; do sedtk data validate "$d" > /dev/null; done
fi

jobs_begin  # stages 1-5: planned here, run concurrently by jobs_run below
if stage_enabled 1; then
  if $online_feats; then
    log "Stage 1: skipped (--online-feats true: the upstream runs inside training and decoding)"
  else
    log "Stage 1: features of data/all per upstream ($(system_upstreams | tr '\n' ' '); all layers," \
      "float16; about 9 GB per audio hour for a large model)"
    systems_dump all
  fi
fi

if stage_enabled 2; then
  log "Stage 2: stage-1 ASR training (content branch), folds: $folds"
  for k in $folds; do systems_stage1 "exp/fold$k" "data/fold$k/train" "data/fold$k/dev"; done
fi

if stage_enabled 3; then
  log "Stage 3: stage-2 alternating SER-SED / ASR training (and one-stage systems), folds: $folds"
  for k in $folds; do systems_stage2 "exp/fold$k" "data/fold$k/train" "data/fold$k/dev"; done
fi

if stage_enabled 4; then
  log "Stage 4: decoding each fold's test session"
  for k in $folds; do systems_decode "exp/fold$k" "data/fold$k/test"; done
fi

if stage_enabled 5; then
  log "Stage 5: scoring per fold and pooled over folds $folds (baselines: ${systems_arr[*]:1})"
  baselines=()
  for sys in "${systems_arr[@]:1}"; do baselines+=(--baseline "$sys"); done
  refs=()
  pooled=()
  all_dirs=()
  for k in $folds; do refs+=(--ref "data/fold$k/test"); done
  for sys in "${systems_arr[@]}"; do
    final=$(system_final "$conf" "$sys")
    dirs=()
    for k in $folds; do dirs+=("exp/fold$k/$final/decode_test"); done
    pooled+=(--hyp "$sys=$(IFS=,; echo "${dirs[*]}")")
    all_dirs+=("${dirs[@]}")
  done
  for k in $folds; do
    hyps=()
    dirs=()
    for sys in "${systems_arr[@]}"; do
      dirs+=("exp/fold$k/$(system_final "$conf" "$sys")/decode_test")
      hyps+=(--hyp "$sys=${dirs[-1]}")
    done
    job score "exp/log/score_fold$k.log" "exp/score/fold$k" "${dirs[@]}" -- \
      sedtk score --ref "data/fold$k/test" "${hyps[@]}" "${baselines[@]}" --out "exp/score/fold$k"
  done
  job score exp/log/score_pooled.log exp/score/pooled "${all_dirs[@]}" -- \
    sedtk score "${refs[@]}" "${pooled[@]}" "${baselines[@]}" --out exp/score/pooled --latex
fi
jobs_run
if stage_enabled 5; then log "pooled results: exp/score/pooled/RESULTS.md (per fold: exp/score/fold<k>/RESULTS.md)"; fi
