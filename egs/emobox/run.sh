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
set -euo pipefail
cd "$(dirname "$0")"
. ../../tools/recipe_common.sh
. ../db.sh

corpus=""            # an EmoBox corpus: a folder of $EMOBOX_DATA (casia, iemocap, meld, ravdess, ...)
stage=0
stop_stage=5
nj=8                 # CPU jobs: audio probing, ffmpeg, descriptor measurement, feature dump workers
ngpu=1               # GPUs per training run (torchrun when > 1)
cmd=${SEDTK_CMD:-local}
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
       [--nj N] [--ngpu N] [--cmd local|slurm] [--device cuda] [--hubert ID|PATH] [--llm ID|PATH]
       [--init auto|none|EXP] [--online-feats true] [--train-extra '--set k=v'] [--force true]
Stages: 0 data+descriptors, 1 feature dump, 2 (no stage-1 ASR), 3 training, 4 decode, 5 score.
EmoBox locations: EMOBOX_DATA (its data/ folder) and EMOBOX_AUDIO (the folder holding downloads/) in egs/db.sh."
parse_options "$@"

[ -n "$corpus" ] || die "--corpus NAME is needed: one of EmoBox's corpora, a folder of \$EMOBOX_DATA"
read -r -a extra <<< "$train_extra"
read -r -a dec_opts <<< "$decode_opts"
read -r -a systems_arr <<< "$systems"
for sys in "${systems_arr[@]}"; do [ -f "conf/$sys.yaml" ] || die "--systems: no conf/$sys.yaml"; done
launch=("$SEDTK_TOOLS/launch.sh" --cmd "$cmd")
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
  run_step "$data" "$EMOBOX_DATA/$corpus" -- \
    sedtk data prep emobox "$EMOBOX_DATA/$corpus" "$EMOBOX_AUDIO" "$data" --nj "$nj"
  mapfile -t splits < <(find "$data" -mindepth 2 -maxdepth 2 -path "$data/fold*" -type d | sort)
  copy=()
  for d in "${splits[@]}"; do copy+=(--copy-to "$d"); done
  run_step "$data/.steps/describe" "$data" -- \
    sedtk data describe "$data/all" --force --nj "$nj" "${copy[@]}"
  sedtk data validate "$data/all" > /dev/null  # the folds are its subsets, descriptors copied line by line
fi

if stage_enabled 1; then
  if $online_feats; then
    log "Stage 1: skipped (--online-feats true: the upstream runs inside training and decoding)"
  else
    log "Stage 1: features of $data/all from $hubert (all layers, float16)"
    run_step "$dump" "$data" -- \
      "${launch[@]}" --gpus 1 --cpus "$nj" "exp/log/dump_${corpus}.log" -- \
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
      f=(); deps=(); i=()
      if ! $online_feats; then f=(--feats-train "$dump" --feats-dev "$dump"); deps=("$dump"); fi
      [ "$sys" = ssl ] || i=("${init_opts[@]}")
      # shellcheck disable=SC2046  # sedtk_train_cmd is "sedtk train" or a torchrun command line
      run_step "$exp/fold$k/$sys" "conf/$sys.yaml" "$data/fold$k/train" "$data/fold$k/dev" "${deps[@]}" -- \
        "${launch[@]}" --gpus "$ngpu" "exp/log/train_${corpus}_fold${k}_$sys.log" -- \
        $(sedtk_train_cmd "$ngpu") --config "conf/$sys.yaml" --exp "$exp/fold$k/$sys" "${i[@]}" \
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
      run_step "$exp/fold$k/$sys/decode_test" "$exp/fold$k/$sys" "$data/fold$k/test" -- \
        "${launch[@]}" --gpus 1 "exp/log/decode_${corpus}_fold${k}_$sys.log" -- \
        sedtk decode --model "$exp/fold$k/$sys" --data "$data/fold$k/test" "${f[@]}" \
        --out "$exp/fold$k/$sys/decode_test" --device "$device" "${dec_opts[@]}"
    done
  done
fi

if stage_enabled 5; then
  log "Stage 5: scoring over folds $(fold_list)(first system tested against the others; EmoBox's view)"
  refs=()
  hyps=()
  baselines=()
  for k in $(fold_list); do refs+=(--ref "$data/fold$k/test"); done
  for sys in "${systems_arr[@]}"; do
    dirs=()
    for k in $(fold_list); do dirs+=("$exp/fold$k/$sys/decode_test"); done
    hyps+=(--hyp "$sys=$(IFS=,; echo "${dirs[*]}")")
  done
  for sys in "${systems_arr[@]:1}"; do baselines+=(--baseline "$sys"); done
  run_step "$exp/score" "$exp"/fold*/*/decode_test -- \
    sedtk score "${refs[@]}" "${hyps[@]}" "${baselines[@]}" --emobox --out "$exp/score" --latex
  log "results: $exp/score/RESULTS.md (section 'EmoBox leaderboard view': the numbers to compare with EmoBox)"
fi
