#!/usr/bin/env bash
# Any of EmoBox's 32 emotion corpora (14 languages) on EmoBox's own folds and label inventory: the SSL
# SER baseline and the LLM system, scored as EmoBox's leaderboard reports (UA, WA, macro-F1 per fold,
# averaged over the folds).  See README.md.
#
#   bash egs/emobox/run.sh --corpus casia             # lists in $EMOBOX_DATA/casia, audio in $EMOBOX_AUDIO
#   bash egs/emobox/run.sh --corpus iemocap --folds "1 2" --stage 3 --ngpu 2
#
# Stages (public numbers, as in the other recipes; never renumbered):
#   0  data/<corpus>/{all,fold<k>/{train,dev,test}} (sedtk data prep emobox) and descriptor
#      pseudo-labels of every utterance (sedtk data describe, in the corpus's language where the
#      caption vocabulary has it), copied into the folds
#   1  frozen SSL feature dump of data/<corpus>/all (skipped with --online-feats true)
#   2  stage-1 ASR training: nothing to do (EmoBox's lists have no transcripts)
#   3  per fold: llm (conf/llm.yaml, Tab. 2 Sys. 6) and ssl (conf/ssl.yaml)   exp/<corpus>/fold<k>/<sys>
#   4  decode each fold's test list                                         .../<sys>/decode_test
#   5  score per fold and over the folds, t-tests, EmoBox's view            exp/<corpus>/score/
#
# Stages 1-5 are planned first, then run as one graph of jobs (the folds x systems side by side, each
# as soon as what it reads is finished; docs/jobs.md): on this machine's GPUs or through sbatch.
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

corpus=""            # an EmoBox corpus: a folder of $EMOBOX_DATA (casia, iemocap, meld, ravdess, ...)
stage=0
stop_stage=5
nj=8                 # CPU jobs: audio probing, ffmpeg, descriptor measurement, feature dump workers
ngpu=1               # GPUs per training run of the llm system (torchrun when > 1; ssl: always 1)
nnodes=1             # nodes per llm training run (Slurm; torchrun rendezvous through srun when > 1)
decode_nj=1          # shards per decode, each a 1-GPU job
cmd=${SEDTK_CMD:-local}  # local: this machine's GPUs (the local pool); slurm: sbatch
max_jobs=0           # most jobs at once (0: as many as the GPUs / Slurm allow)
jobs_conf=conf/jobs.yaml  # what each kind of job asks for, over sedtk/conf/jobs.yaml (if present)
device=cuda          # feature dump and decoding device: cuda, cuda:N or cpu
force=false
folds=""             # default: every fold EmoBox lists for the corpus
systems="llm ssl"    # conf/<sys>.yaml; the first is tested against the others
hubert=${HUBERT:-facebook/hubert-large-ls960-ft}
llm=${LLM:-meta-llama/Llama-3.1-8B-Instruct}
init=auto            # the llm system starts from: auto (../speechcraft/exp/sys6 when finished), none, or an EXP
online_feats=false   # true: no dump, the upstream runs inside training and decoding
train_extra=""       # more "sedtk train" options, e.g. "--set train.max_steps=10"
decode_opts="--batch-size 8"
help_message="usage: $0 --corpus NAME [--stage N] [--stop-stage N] [--folds '1 2'] [--systems 'llm ssl']
       [--nj N] [--ngpu N] [--nnodes N] [--cmd local|slurm] [--max-jobs N] [--decode-nj N]
       [--device cuda] [--hubert ID|PATH] [--llm ID|PATH]
       [--init auto|none|EXP] [--online-feats true] [--train-extra '--set k=v'] [--force true]
Stages: 0 data+descriptors, 1 feature dump, 2 (no stage-1 ASR), 3 training, 4 decode, 5 score.
EmoBox locations: EMOBOX_DATA (its data/ folder) and EMOBOX_AUDIO (the folder holding downloads/) in egs/db.sh."
parse_options "$@"

[ -n "$corpus" ] || die "--corpus NAME is needed: one of EmoBox's corpora, a folder of \$EMOBOX_DATA"
read -r -a extra <<< "$train_extra"
read -r -a dec_opts <<< "$decode_opts"
read -r -a systems_arr <<< "$systems"
for sys in "${systems_arr[@]}"; do [ -f "conf/$sys.yaml" ] || die "--systems: no conf/$sys.yaml"; done
online_opts=()
if $online_feats; then online_opts=(--set data.online_features=true); fi
data=data/$corpus
dump=dump/$corpus/$(basename "$hubert")/all  # one dump of all serves every fold
exp=exp/$corpus
mkdir -p exp/log

fold_list() {  # the folds to run: --folds, else every fold the preparation wrote
  if [ -n "$folds" ]; then echo "$folds"; return; fi
  find "$data" -maxdepth 1 -name 'fold*' -type d | sed 's/.*fold//' | sort -n | tr '\n' ' '
}

if stage_enabled 0; then
  log "Stage 0: EmoBox's $corpus lists -> data dirs; descriptor pseudo-labels"
  require_dir EMOBOX_DATA
  require_dir EMOBOX_AUDIO
  job --cpus "$nj" prep "exp/log/prep_$corpus.log" "$data" "$EMOBOX_DATA/$corpus" -- \
    sedtk data prep emobox "$EMOBOX_DATA/$corpus" "$EMOBOX_AUDIO" "$data" --nj "$nj"
  mapfile -t splits < <(find "$data" -mindepth 2 -maxdepth 2 -path "$data/fold*" -type d | sort)
  copy=()
  for d in "${splits[@]}"; do copy+=(--copy-to "$d"); done
  job --cpus "$nj" prep "exp/log/describe_$corpus.log" "$data/.steps/describe" "$data" -- \
    sedtk data describe "$data/all" --force --nj "$nj" "${copy[@]}"
  sedtk data validate "$data/all" > /dev/null  # the folds are its subsets, descriptors copied line by line
fi

jobs_begin  # stages 1-5: planned here, run concurrently by jobs_run below
if stage_enabled 1; then
  if $online_feats; then
    log "Stage 1: skipped (--online-feats true: the upstream runs inside training and decoding)"
  else
    log "Stage 1: features of $data/all from $hubert (all layers, float16)"
    job --gpus 1 --cpus "$nj" dump "exp/log/dump_${corpus}.log" "$dump" "$data" -- \
      sedtk feats dump "$data/all" "$dump" --upstream "$hubert" --nj "$nj" --device "$device"
  fi
fi

if stage_enabled 2; then
  log "Stage 2: nothing to do: EmoBox's lists carry no transcripts, so no stage-1 ASR run (README.md)"
fi

if stage_enabled 3; then
  init_opts=()
  case "$init" in
    none) ;;
    auto)
      if [ -f ../speechcraft/exp/sys6/.done ]; then
        init_opts=(--init ../speechcraft/exp/sys6)
        log "the llm system starts from ../speechcraft/exp/sys6 (the SpeechCraft run of the same system)"
      else
        log "WARNING: no finished ../speechcraft/exp/sys6: the llm system trains from scratch on $corpus" \
          "(the paper pre-trains on SpeechCraft first; see README.md)"
      fi
      ;;
    *) [ -d "$init" ] || die "--init $init: no such experiment"; init_opts=(--init "$init") ;;
  esac
  for k in $(fold_list); do
    log "Stage 3: training on $data/fold$k: ${systems_arr[*]}"
    for sys in "${systems_arr[@]}"; do
      f=(); deps=(); i=(); gpus=$ngpu; nodes=$nnodes
      if ! $online_feats; then f=(--feats-train "$dump" --feats-dev "$dump"); deps=("$dump"); fi
      if [ "$sys" = ssl ]; then gpus=1; nodes=1; else i=("${init_opts[@]}"); fi  # the SSL baseline: one GPU
      job --gpus "$gpus" --nodes "$nodes" --ddp train "exp/log/train_${corpus}_fold${k}_$sys.log" \
        "$exp/fold$k/$sys" "conf/$sys.yaml" "$data/fold$k/train" "$data/fold$k/dev" "${deps[@]}" \
        ${i[1]:+"${i[1]}"} -- \
        sedtk train --config "conf/$sys.yaml" --exp "$exp/fold$k/$sys" "${i[@]}" \
        --train "$data/fold$k/train" --dev "$data/fold$k/dev" "${f[@]}" \
        --set "model.upstream=$hubert" --set "model.llm=$llm" "${online_opts[@]}" "${extra[@]}"
    done
  done
fi

if stage_enabled 4; then
  for k in $(fold_list); do
    log "Stage 4: decoding $data/fold$k/test"
    for sys in "${systems_arr[@]}"; do
      f=()
      $online_feats || f=(--feats "$dump")
      decode_job "exp/log/decode_${corpus}_fold${k}_$sys" "$exp/fold$k/$sys/decode_test" "$exp/fold$k/$sys" \
        "$data/fold$k/test" -- sedtk decode --model "$exp/fold$k/$sys" --data "$data/fold$k/test" "${f[@]}" \
        --out "$exp/fold$k/$sys/decode_test" --device "$device" "${dec_opts[@]}"
    done
  done
fi

if stage_enabled 5; then
  log "Stage 5: scoring over folds $(fold_list)(first system tested against the others; EmoBox's view)"
  refs=()
  hyps=()
  baselines=()
  all_dirs=()
  for k in $(fold_list); do refs+=(--ref "$data/fold$k/test"); done
  for sys in "${systems_arr[@]}"; do
    dirs=()
    for k in $(fold_list); do dirs+=("$exp/fold$k/$sys/decode_test"); done
    hyps+=(--hyp "$sys=$(IFS=,; echo "${dirs[*]}")")
    all_dirs+=("${dirs[@]}")
  done
  for sys in "${systems_arr[@]:1}"; do baselines+=(--baseline "$sys"); done
  job score "exp/log/score_$corpus.log" "$exp/score" "${all_dirs[@]}" -- \
    sedtk score "${refs[@]}" "${hyps[@]}" "${baselines[@]}" --emobox --out "$exp/score" --latex
fi
jobs_run
if stage_enabled 5; then
  log "results: $exp/score/RESULTS.md (section 'EmoBox leaderboard view': the numbers to compare with EmoBox)"
fi
