# shellcheck shell=bash
# Where the corpora live: the only place the recipes learn it (never in YAML or code).
# Edit the defaults below for your site, or set any of them in the environment for one run:
#   IEMOCAP=/data/IEMOCAP_full_release ./run.sh
# An empty value means "not available here"; a recipe that needs it stops with a message naming it.

# IEMOCAP_full_release/ (holds Session1..Session5); see egs/iemocap/README.md
IEMOCAP=${IEMOCAP:-}
# MELD.Raw/ after unpacking train/dev/test tarballs (train/train_splits, dev_splits_complete,
# output_repeated_splits_test and the *_sent_emo.csv files); see egs/meld/README.md
MELD=${MELD:-}
# SpeechCraft annotation release for GigaSpeech (the folder holding its JSON files, or one file);
# see egs/speechcraft/README.md
SPEECHCRAFT=${SPEECHCRAFT:-}
# GigaSpeech audio, SpeechCraft's audio source: a Kaldi data dir (wav.scp + segments, ids such as
# POD0000005660_S0000383; e.g. the GigaSpeech-m dir of the Kaldi/ESPnet/lhotse recipes) or a bare wav.scp
GIGASPEECH=${GIGASPEECH:-}
# EMOSEC/SECap caption test set (text.txt, wav.scp, fid2captions.json, wav/); see egs/emosec/README.md
EMOSEC=${EMOSEC:-}
# EmoBox (github.com/emo-box/EmoBox): its data/ folder (data/<corpus>/<corpus>.jsonl, fold_<k>/,
# label_map.json) and the folder holding its downloads/ (downloads/<corpus>/... as in the jsonl "wav"
# paths); see egs/emobox/README.md
EMOBOX_DATA=${EMOBOX_DATA:-}
EMOBOX_AUDIO=${EMOBOX_AUDIO:-}
