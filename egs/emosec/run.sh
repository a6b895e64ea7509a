#!/usr/bin/env bash
# EMOSEC (SECap's public 600-utterance Mandarin caption test set): zero-shot speech-emotion-description
# prediction with models trained elsewhere (egs/speechcraft), scored by BLEU@4 / METEOR / ROUGE-L /
# CIDEr / SPICE: the paper's Table 1.  Chinese captions are tokenised per character.  See README.md.
#
#   bash egs/emosec/run.sh                      # the models of egs/speechcraft/exp
#   bash egs/emosec/run.sh --models "sys7=/path/exp/sys7_stage2 sys4=/path/exp/sys4_stage2" --baselines sys4
#
# Stages (public numbers, as in every recipe; this one trains nothing):
#   0  data/test from the SECap release (text.txt, wav.scp, fid2captions.json, 24 kHz wavs)
#   1  nothing to dump: decoding runs HuBERT on the audio (600 utterances)
#   2  nothing to train (zero-shot)
#   3  nothing to train (zero-shot)
#   4  decode the captions (task ser_sed) with every model       exp/<name>/decode_test
#   5  score captions (character tokens), paired t-tests vs the baselines   exp/score_test/
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

stage=0
stop_stage=5
nj=4
decode_nj=1          # shards per decode, each a 1-GPU job (600 utterances: one GPU each, 3 side by side)
cmd=${SEDTK_CMD:-local}  # local: this machine's GPUs (the local pool); slurm: sbatch
max_jobs=0           # most jobs at once (0: as many as the GPUs / Slurm allow)
jobs_conf=conf/jobs.yaml  # what each kind of job asks for, over sedtk/conf/jobs.yaml (if present)
device=cuda          # decoding device: cuda, cuda:N or cpu
force=false
# NAME=EXPERIMENT pairs; the first is the proposed system (Tab. 1 Sys. 3, 1 and 2)
models="sys7=../speechcraft/exp/sys7_stage2 sys4=../speechcraft/exp/sys4_stage2 sys6=../speechcraft/exp/sys6"
baselines="sys4"     # Tab. 1 marks significance over Sys. 1 (= sys4)
hubert=${HUBERT:-}   # local copies of the models' upstream / LLM (default: the paths they were trained with)
llm=${LLM:-}
lang=zh              # caption and transcript language for scoring: zh = character tokens, CER
decode_opts="--batch-size 8"
help_message="usage: $0 [--stage N] [--stop-stage N] [--models 'NAME=EXP ...'] [--baselines 'NAME ...']
       [--device cuda] [--hubert PATH] [--llm PATH] [--cmd local|slurm] [--max-jobs N] [--decode-nj N]
       [--force true]
Stages: 0 data, 1 (nothing), 2-3 (nothing: zero-shot), 4 decode captions, 5 score.
Corpus location: EMOSEC in egs/db.sh or the environment."
parse_options "$@"

read -r -a dec_opts <<< "$decode_opts"
read -r -a model_arr <<< "$models"
overrides=()
[ -n "$hubert" ] && overrides+=(--upstream "$hubert")
[ -n "$llm" ] && overrides+=(--llm "$llm")
mkdir -p exp/log

if stage_enabled 0; then
  log "Stage 0: data prep (SECap test set)"
  require_dir EMOSEC
  job --cpus "$nj" prep exp/log/prep.log data "$EMOSEC" -- sedtk data prep emosec "$EMOSEC" data --nj "$nj"
  sedtk data validate data/test > /dev/null
fi

stage_enabled 1 && log "Stage 1: nothing to dump (decoding runs the upstream on the audio)"
stage_enabled 2 && log "Stage 2: nothing to train (zero-shot evaluation)"
stage_enabled 3 && log "Stage 3: nothing to train (zero-shot evaluation)"

jobs_begin  # stages 4-5: every model's decode side by side, then the score
if stage_enabled 4; then
  log "Stage 4: decoding captions with ${model_arr[*]}"
  for pair in "${model_arr[@]}"; do
    name=${pair%%=*}
    model=${pair#*=}
    [ -e "$model" ] || die "model $name: $model not found (train it with egs/speechcraft/run.sh, or --models)"
    decode_job "exp/log/decode_$name" "exp/$name/decode_test" "$model" data/test -- \
      sedtk decode --model "$model" --data data/test --out "exp/$name/decode_test" --tasks ser_sed \
      --device "$device" "${overrides[@]}" "${dec_opts[@]}"
  done
fi

if stage_enabled 5; then
  log "Stage 5: scoring captions ($lang; baselines: $baselines)"
  hyps=()
  bases=()
  dirs=()
  for pair in "${model_arr[@]}"; do
    dirs+=("exp/${pair%%=*}/decode_test")
    hyps+=(--hyp "${pair%%=*}=${dirs[-1]}")
  done
  for b in $baselines; do bases+=(--baseline "$b"); done
  job score exp/log/score_test.log exp/score_test "${dirs[@]}" -- \
    sedtk score --ref data/test "${hyps[@]}" "${bases[@]}" --lang "$lang" --out exp/score_test --latex
fi
jobs_run
if stage_enabled 5; then
  log "results: exp/score_test/RESULTS.md"
fi
