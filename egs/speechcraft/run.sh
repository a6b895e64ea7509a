#!/usr/bin/env bash
# SpeechCraft (GigaSpeech-m, 670k clips / 740 h): trains the paper's models on fine-grained speech
# descriptions (Sec. 4.1).  The result is the model EMOSEC decodes zero-shot (egs/emosec) and IEMOCAP /
# MELD may start from (--init-from).  See README.md.
#
#   bash egs/speechcraft/run.sh --ngpu 8
#   bash egs/speechcraft/run.sh --stage 4 --systems "sys7 sys6 sys4"
#
# Stages (public numbers; never renumbered):
#   0  data/{all,train,dev,test}: SpeechCraft annotations joined with the GigaSpeech audio (Kaldi dir)
#   1  frozen HuBERT feature dump: skipped by default (--online-feats true; a dump would be ~6.8 TB)
#   2  stage-1 ASR training                                           exp/<sys>_stage1
#   3  stage-2 alternating SER-SED / ASR training (one-stage systems) exp/<sys>[_stage2]
#   4  decode the held-out test set                                   exp/<sys>/decode_test
#   5  score captions, UA and WER with paired t-tests vs the baselines exp/score_test/
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

stage=0
stop_stage=5
nj=16                # CPU jobs: audio probing, feature dump workers
ngpu=2               # GPUs per training run (torchrun, global batch kept at 8; see README.md)
nnodes=1             # nodes per training run (Slurm; torchrun rendezvous through srun when > 1)
decode_nj=2          # shards per decode (~6.7k test clips), each a 1-GPU job
cmd=${SEDTK_CMD:-local}  # local: this machine's GPUs (the local pool); slurm: sbatch
max_jobs=0           # most jobs at once (0: as many as the GPUs / Slurm allow)
jobs_conf=conf/jobs.yaml  # what each kind of job asks for, over sedtk/conf/jobs.yaml (if present)
device=cuda          # feature dump and decoding device: cuda, cuda:N or cpu
force=false
# Tab. 1: Sys. 3 (= sys7, proposed), Sys. 1 (= sys4), Sys. 2 (= sys6); sys5 (not in Tab. 1) is where
# IEMOCAP / MELD start their Sys. 5 (sedtk/systems.py first_run): its stage 1 is sys7's, trained once
systems="sys7 sys4 sys6 sys5"
hubert=${HUBERT:-facebook/hubert-large-ls960-ft}
llm=${LLM:-meta-llama/Llama-3.1-8B-Instruct}
online_feats=true    # false: dump features in stage 1 and train from the dump
init_from=none       # SpeechCraft is where the paper's models start: from scratch
train_extra=""       # more "sedtk train" options, e.g. "--set data.num_workers=8"
decode_opts="--batch-size 8"
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--ngpu N] [--systems 'sys7 sys4 sys6 sys5']
       [--online-feats false] [--device cuda] [--hubert ID|PATH] [--llm ID|PATH]
       [--train-extra '--set k=v'] [--cmd local|slurm] [--max-jobs N] [--nnodes N]
       [--decode-nj N] [--force true]
Stages: 0 data, 1 feature dump (off by default), 2 stage-1 ASR, 3 stage-2 SER-SED/ASR, 4 decode, 5 score.
Corpus locations: SPEECHCRAFT and GIGASPEECH in egs/db.sh or the environment."
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
  log "Stage 0: data prep (SpeechCraft annotations + GigaSpeech audio)"
  require_path SPEECHCRAFT  # the folder of annotation files, or one file
  require_path GIGASPEECH  # a Kaldi dir, or a bare wav.scp
  job --cpus "$nj" prep exp/log/prep.log data "$SPEECHCRAFT" "$GIGASPEECH" -- \
    sedtk data prep speechcraft "$SPEECHCRAFT" data --audio "$GIGASPEECH" --nj "$nj"
  for x in train dev test; do sedtk data validate "data/$x" > /dev/null; done
fi

jobs_begin  # stages 1-5: planned here, run concurrently by jobs_run below
if stage_enabled 1; then
  if $online_feats; then
    log "Stage 1: skipped (online features: HuBERT runs inside training and decoding)"
  else
    log "Stage 1: $hubert features (all layers, float16; about 9 GB per audio hour)"
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
  log "Stage 4: decoding the held-out test set (data/dev chose the checkpoints)"
  systems_decode exp data/test
fi

if stage_enabled 5; then
  log "Stage 5: scoring the test set (baselines: ${systems_arr[*]:1})"
  split_score test
fi
jobs_run
