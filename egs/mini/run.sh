#!/usr/bin/env bash
# The sedtk demo: the whole paper end to end on a synthetic corpus, on CPU, with nothing to download.
#
#   bash egs/mini/run.sh                       # all stages, <= 15 min on 2 cores (RESULTS.md)
#   bash egs/mini/run.sh --stage 4             # from decoding on
#   MINI_QUICK=1 bash egs/mini/run.sh          # reduced run through every stage (CI), in exp/quick/
#
# Stages (public numbers, shared by every recipe; see README.md):
#   0  synthesise the espeak-ng corpus (train/dev/test with held-out sentences) and a larger ASR
#      training set (more sentences of the grammar, dev/test sentences unseen); write the tiny random
#      HuBERT and Llama checkpoints (sedtk model init-tiny); and the paper's pretrained parts in
#      miniature: the HuBERT fine-tuned for ASR with CTC (hubert-large-ls960-ft's analogue) and the
#      LLM pre-trained as a language model on text of the grammar (a pretrained Llama's analogue)
#   1  dump the frozen upstream's features of train/dev/test (and of the ASR training set)
#   2  stage-1 ASR training (content branch)                          exp/<sys>_stage1
#   3  stage-2 alternating SER-SED / ASR training (descriptor branch)  exp/<sys>_stage2
#   4  decode the test set with every system, the proposed one also with its speech embeddings
#      zeroed (the no-speech control: the LLM's prior alone), and write the constant "majority"
#      system (chance)
#   5  score with significance tests against the baselines, write RESULTS.md, decode one wav
set -euo pipefail
cd "$(dirname "$0")"
recipe=$(pwd)
. ../../tools/recipe_common.sh

stage=0
stop_stage=5
nj=2                 # parallel jobs (espeak-ng processes, feature dump workers)
cmd=${SEDTK_CMD:-local}
max_jobs=$nj         # jobs side by side (the two pretrainings, the trainings of a stage, the decodes)
force=false
quick=false          # reduced run for CI (also MINI_QUICK=1)
workdir=.            # where data/, dump/, models/, exp/ and RESULTS.md go (exp/quick when quick)
num_utts=800         # utterances synthesised; train/dev/test hold about 76/12/12 %
seed=0
asr_utts=3200        # utterances of the ASR training set (stage 1, the upstream's CTC); 0: the corpus's train
asr_sentences=1600   # training sentences of the grammar in it besides the corpus's 160
upstream=hubert-ctc  # hubert-ctc: the tiny HuBERT fine-tuned with CTC here; fbank, fbank-raw (no mean
                     # normalisation), or hubert: the tiny random HuBERT (README.md)
llm_init=lm          # lm: the tiny LLM pre-trained on text of the grammar; random: init-tiny's LLM as is
ctc_epochs=6         # epochs of the upstream's CTC fine-tuning
lm_sentences=6000    # grammar sentences of the LLM's pre-training text (a third as many descriptions)
ssl_upstream=fbank-raw  # upstream of the SSL SER baseline (Sys. 1): its mean pooling of a linear
                        # projection is constant on mean-normalised fbank (see README.md)
systems="sys7 sys5 sys4 sys1"  # the first is the proposed system, the others its baselines (conf/)
train_extra=""       # more "sedtk train" options for every run, e.g. "--set train.max_steps=2"
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--max-jobs N] [--quick true] [--workdir DIR]
       [--num-utts N] [--asr-utts N] [--asr-sentences N] [--ctc-epochs N] [--lm-sentences N]
       [--upstream hubert-ctc|fbank|fbank-raw|hubert] [--llm-init lm|random]
       [--ssl-upstream fbank-raw|fbank|hubert] [--systems 'sys7 sys5 sys4 sys1'] [--train-extra '--set k=v']
       [--force true]
Stages: 0 corpus, tiny models and their pretraining, 1 feature dump, 2 stage-1 ASR, 3 stage-2 SER-SED/ASR,
4 decode (and the no-speech control), 5 score.
MINI_QUICK=1 runs a reduced demo in exp/quick/ (CI)."

[ "${MINI_QUICK:-0}" = 1 ] && quick=true
parse_options "$@"

if $quick; then
  [ "$workdir" = . ] && workdir=exp/quick
  [ "$systems" = "sys7 sys5 sys4 sys1" ] && systems="sys7 sys5"
  num_utts=48 asr_sentences=24 ctc_epochs=1 lm_sentences=64
  [ "$asr_utts" = 0 ] || asr_utts=40
  train_extra="--set train.epochs=1 --set train.max_steps=3 --set train.dev_max_utts=4 $train_extra"
fi
# Tiny models on a few cores: one thread per process is far faster than contended OpenMP threads.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

mkdir -p "$workdir"
cd "$workdir"
conf=$recipe/conf
data=data/synth
asr_data=data/synth_asr  # the ASR training set (its own dev/test splits are not used)
models=$(pwd)/models  # absolute: the trained model records these paths (sedtk decode --wav anywhere)
pretrained=$(pwd)/pretrained  # the pretrained parts of stage 0 (hubert_ctc/, llm/)
# upstream_path NAME: the value of model.upstream for an upstream name of this recipe
upstream_path() {
  case "$1" in
    fbank | fbank-raw) echo "$1" ;;
    hubert) echo "$models/hubert" ;;
    hubert-ctc) echo "$pretrained/hubert_ctc" ;;
    *) die "upstreams are hubert-ctc, fbank, fbank-raw or hubert, got '$1'" ;;
  esac
}
# dep_of NAME: what the features of upstream NAME are made from (nothing for the filterbanks)
dep_of() {
  case "$1" in
    hubert) echo "$models" ;;
    hubert-ctc) echo "$pretrained/hubert_ctc" ;;
  esac
}
case "$llm_init" in
  lm) llm=$pretrained/llm ;;
  random) llm=$models/llm ;;
  *) die "--llm-init: lm or random, got '$llm_init'" ;;
esac
up=$(upstream_path "$upstream")
upstream_path "$ssl_upstream" > /dev/null
# the stage-1 (ASR) training set: the larger ASR set, or the corpus's train split (--asr-utts 0)
if [ "$asr_utts" -gt 0 ]; then asr_train=$asr_data/train asr_split=asr_train; else asr_train=$data/train asr_split=train; fi
read -r -a extra <<< "$train_extra"
read -r -a systems_arr <<< "$systems"
proposed=${systems_arr[0]}
# sys_upstream SYS: the upstream name SYS runs on (the SSL SER baselines: $ssl_upstream)
sys_upstream() { if system_is_ssl "$1"; then echo "$ssl_upstream"; else echo "$upstream"; fi; }
# set_sys_opts SYS STAGE: sys_train_opts (sedtk train options) and sys_deps (its inputs) for a run of
# SYS; STAGE 1 trains on the ASR training set, 2 (and the one-stage systems) on the corpus's train split
set_sys_opts() {
  local u train=$data/train split=train
  u=$(sys_upstream "$1")
  if [ "$2" = 1 ]; then train=$asr_train split=$asr_split; fi
  sys_dump=dump/$u
  sys_train_opts=(--train "$train" --dev "$data/dev" --feats-train "$sys_dump/$split"
    --feats-dev "$sys_dump/dev" --set "model.upstream=$(upstream_path "$u")" --set "model.llm=$llm"
    "${extra[@]}")
  sys_deps=("$train" "$data/dev" "$sys_dump/$split" "$sys_dump/dev" "$models")
  [ "$llm_init" = random ] || sys_deps+=("$llm")
  return 0
}
# Inputs of a step named by their files, not their folders: "sedtk score" caches measurements in the
# reference dir (descriptor_feats.tsv) and evidence in the decode dirs, which must not redo the steps.
data_files() { local f; for f in wav.scp text utt2emo utt2desc utt2attr; do [ -e "$1/$f" ] && echo "$1/$f"; done; true; }
decode_files() { local d f; for d in "$@"; do for f in utt2emo utt2emo_post text utt2desc; do [ -e "$d/$f" ] && echo "$d/$f"; done; done; true; }
declare -A dump_ups=()
for sys in "${systems_arr[@]}"; do dump_ups[$(sys_upstream "$sys")]=1; done
timing=exp/timing.tsv
mkdir -p exp/log

# The wall and CPU time of each stage and the load average at its end, for RESULTS.md (one line per
# stage; a re-run replaces it).  CPU seconds: user + system time of every process the stage ran and
# waited for (bash's "times", which must run in this shell, not in a $(...) subshell).
cpu_seconds() {
  times > exp/.times
  awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%.0f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' exp/.times
}
stage_t0=0 stage_cpu0=0
begin_stage() { stage_t0=$SECONDS; cpu_seconds > exp/.cpu0; stage_cpu0=$(cat exp/.cpu0); log "Stage $1: $2"; }
end_stage() {
  local cpu load
  cpu_seconds > exp/.cpu1
  cpu=$(($(cat exp/.cpu1) - stage_cpu0))
  load=$(cut -d' ' -f1-3 /proc/loadavg 2> /dev/null || echo "?")
  touch "$timing"
  { grep -v "^$1	" "$timing" || true; printf '%s\t%s\t%s\t%s\t%s\n' "$1" $((SECONDS - stage_t0)) "$2" "$cpu" "$load"; } \
    | sort -n > "$timing.tmp"
  mv "$timing.tmp" "$timing"
}

if stage_enabled 0; then
  begin_stage 0 "corpus, tiny models and their pretraining"
  run_step "$data" -- sedtk data synth "$data" --num-utts "$num_utts" --seed "$seed" --nj "$nj" --split
  for x in train dev test; do sedtk data validate "$data/$x"; done
  if [ "$asr_utts" -gt 0 ]; then  # another seed: other jitter; more sentences, the same dev/test ones
    run_step "$asr_data" -- sedtk data synth "$asr_data" --num-utts "$asr_utts" --seed $((seed + 1)) \
      --extra-sentences "$asr_sentences" --nj "$nj" --split
  fi
  # The light CNN front end: the same 50 Hz frames, 2.4x faster to fine-tune on CPU (README.md)
  run_step "$models" -- sedtk model init-tiny "$models" --seed "$seed" --hubert-cnn light
  # The paper's pretrained parts in miniature, side by side (independent of each other)
  jobs_begin
  if [ "$upstream" = hubert-ctc ] || [ "$ssl_upstream" = hubert-ctc ]; then
    mapfile -t deps < <(data_files "$asr_train"; data_files "$data/dev")
    job --cpus 1 train exp/log/finetune_ctc.log "$pretrained/hubert_ctc" "${deps[@]}" "$models" -- \
      sedtk model finetune-ctc "$models/hubert" "$asr_train" "$pretrained/hubert_ctc" --dev "$data/dev" \
      --units words --epochs "$ctc_epochs" --seed "$seed"
  fi
  if [ "$llm_init" = lm ]; then
    job --cpus 1 train exp/log/pretrain_lm.log "$pretrained/llm" "$models" -- \
      sedtk model pretrain-lm "$models/llm" "$pretrained/llm" --sentences "$lm_sentences" \
      --descriptions $((lm_sentences / 3)) --seed "$seed"
  fi
  jobs_run
  end_stage 0 "corpus, tiny models and their pretraining"
fi

if stage_enabled 1; then
  begin_stage 1 "feature dump (${!dump_ups[*]})"
  for u in "${!dump_ups[@]}"; do
    splits=("$data/train" "$data/dev" "$data/test")
    # the ASR training set of stage 1 (the LLM systems' upstream)
    [ "$u" = "$upstream" ] && [ "$asr_split" = asr_train ] && splits+=("$asr_train")
    for dir in "${splits[@]}"; do
      x=$(basename "$dir")
      [ "$dir" = "$asr_train" ] && x=$asr_split
      mapfile -t deps < <(data_files "$dir"; dep_of "$u")
      job --cpus "$nj" dump "exp/log/dump_${u}_$x.log" "dump/$u/$x" "${deps[@]}" -- \
        sedtk feats dump "$dir" "dump/$u/$x" --upstream "$(upstream_path "$u")" --nj "$nj"
    done
  done
  end_stage 1 "feature dump (${!dump_ups[*]})"
fi


if stage_enabled 2; then
  begin_stage 2 "stage-1 ASR training"
  jobs_begin
  declare -A trained=()
  for sys in "${systems_arr[@]}"; do
    s1=$(system_stage1 "$conf" "$sys")
    if [ -z "$s1" ] || [ -n "${trained[$s1]:-}" ]; then continue; fi  # no stage 1, or shared and done
    trained[$s1]=1
    set_sys_opts "$sys" 1
    job --cpus 1 train "exp/log/train_$s1.log" "exp/$s1" "$conf/$s1.yaml" "${sys_deps[@]}" -- \
      sedtk train --config "$conf/$s1.yaml" --exp "exp/$s1" "${sys_train_opts[@]}"
  done
  jobs_run
  end_stage 2 "stage-1 ASR training"
fi

if stage_enabled 3; then
  begin_stage 3 "stage-2 SER-SED/ASR training"
  jobs_begin
  for sys in "${systems_arr[@]}"; do
    s1=$(system_stage1 "$conf" "$sys")
    final=$(system_final "$conf" "$sys")
    init=()
    [ -n "$s1" ] && init=(--init "exp/$s1")
    set_sys_opts "$sys" 2
    job --cpus 1 train "exp/log/train_$final.log" "exp/$final" "$conf/$final.yaml" "${sys_deps[@]}" ${s1:+"exp/$s1"} -- \
      sedtk train --config "$conf/$final.yaml" --exp "exp/$final" "${init[@]}" "${sys_train_opts[@]}"
  done
  jobs_run
  end_stage 3 "stage-2 SER-SED/ASR training"
fi

proposed_final=$(system_final "$conf" "$proposed")
control=""  # the no-speech control of the proposed system (an LLM system): its prior alone
system_is_ssl "$proposed" || control=exp/$proposed_final/decode_test_nospeech
if stage_enabled 4; then
  begin_stage 4 "decoding"
  jobs_begin
  for sys in "${systems_arr[@]}"; do
    final=$(system_final "$conf" "$sys")
    sys_dump=dump/$(sys_upstream "$sys")
    mapfile -t deps < <(data_files "$data/test")
    job --cpus 1 decode "exp/log/decode_$final.log" "exp/$final/decode_test" "exp/$final" "${deps[@]}" "$sys_dump/test" -- \
      sedtk decode --model "exp/$final" --data "$data/test" --feats "$sys_dump/test" \
      --out "exp/$final/decode_test" --batch-size 16 --device cpu
    if [ "$sys" = "$proposed" ] && [ -n "$control" ]; then
      job --cpus 1 decode "exp/log/decode_${final}_nospeech.log" "$control" "exp/$final" "${deps[@]}" "$sys_dump/test" -- \
        sedtk decode --model "exp/$final" --data "$data/test" --feats "$sys_dump/test" \
        --out "$control" --batch-size 16 --device cpu --no-speech-control
    fi
  done
  jobs_run
  mapfile -t deps < <(data_files "$data/train"; data_files "$data/test")
  run_step exp/majority/decode_test "${deps[@]}" "$recipe/local/majority_baseline.py" -- \
    "$SEDTK_PYTHON" "$recipe/local/majority_baseline.py" "$data/train" "$data/test" exp/majority/decode_test
  end_stage 4 "decoding"
fi

if stage_enabled 5; then
  begin_stage 5 "scoring, RESULTS.md and one explained decode"
  hyps=()
  baselines=()
  for sys in "${systems_arr[@]}" nospeech majority; do
    case "$sys" in
      majority) dir=exp/majority/decode_test ;;
      nospeech) [ -n "$control" ] || continue; dir=$control ;;
      *) dir=exp/$(system_final "$conf" "$sys")/decode_test ;;
    esac
    hyps+=(--hyp "$sys=$dir")
    [ "$sys" = "$proposed" ] || baselines+=(--baseline "$sys")
  done
  # The evidence check's bands, learned from the train split's known settings (issue 17); the score
  # checks the test descriptions' claims by them and grades the checker against the test truth.
  cal=exp/calibration/calibration.json
  mapfile -t deps < <(data_files "$data/train")
  run_step exp/calibration "${deps[@]}" -- sedtk data calibrate "$data/train" --out "$cal" --nj "$nj"
  mapfile -t deps < <(data_files "$data/test"; decode_files exp/*/decode_test ${control:+"$control"})
  run_step exp/score_test "${deps[@]}" "$cal" -- \
    sedtk score --ref "$data/test" "${hyps[@]}" "${baselines[@]}" --out exp/score_test --calibration "$cal"
  # The browsable report of the proposed system (issue 10): every test utterance with its audio,
  # transcript, description claims and emotion posterior; open exp/report_test.html in a browser.
  proposed_dir=exp/$proposed_final/decode_test
  sedtk report --decode "$proposed_dir" --score exp/score_test -o exp/report_test.html

  # What a new user wants to see first: one wav in, transcript + descriptors + emotion out.  The model
  # is passed explicitly (works whatever the install), and recorded as the default model of
  # "sedtk decode" without --model (in $XDG_CONFIG_HOME/sedtk/default_model or $SEDTK_CONFIG_DIR).
  wav=$(head -n 1 "$data/test/wav.scp" | cut -d' ' -f2-)
  model=$(pwd)/exp/$proposed_final
  log "sedtk decode --wav $wav --model $model"
  sedtk decode --wav "$wav" --model "$model" --device cpu
  sedtk decode --wav "$wav" --model "$model" --device cpu --json > exp/example_decode.json
  "$SEDTK_PYTHON" -c 'import sys; from sedtk.decode.model_ref import record_default_model as r
print("default model for sedtk decode recorded in", r(sys.argv[1]))' "$model"
  end_stage 5 "scoring, RESULTS.md and one explained decode"

  describe=(--describe "sys7=proposed: FD+SER+SED+ASR, alternating" --describe "sys4=no FD: SER+SED+ASR"
    --describe "sys5=FD+SER+ASR, no descriptors" --describe "sys6=FD+SER+SED, one stage, no ASR"
    --describe "sys1=SSL SER baseline: weighted sum, mean pooling, linear (+CTC); no LLM"
    --describe "nospeech=no-speech control: $proposed with its speech embeddings zeroed, the LLM's prior"
    --describe "majority=constant answer: chance level")
  "$SEDTK_PYTHON" "$recipe/local/write_results.py" exp/score_test/score.json RESULTS.md \
    --timing "$timing" --data "$data/train" "$data/dev" "$data/test" --asr-train "$asr_train" \
    --upstream "$upstream" --llm-init "$llm_init" --chance majority \
    ${control:+--control nospeech} --example exp/example_decode.json "${describe[@]}"
  log "results: $(pwd)/RESULTS.md (scores and significance tests: exp/score_test/RESULTS.md)"
fi
