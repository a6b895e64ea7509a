"""sedtk.score: the evaluation of Sec. 4.5 (Tables 1-3) -- SER, ASR and SED metrics with paired tests.

``score_systems([SystemSpec(name, [(ref_dir, hyp_dir), ...]), ...], baselines, out_dir)`` reads the
references (Kaldi data dirs: ``utt2emo`` + ``emotions``, ``text``, ``utt2desc``) and the hypotheses
(``sedtk decode`` dirs with the same files and keys), pools each system's folds and writes to
``out_dir``:

* ``score.json`` -- every metric per system in percent (``ua wa macro_f1 weighted_f1 wer cer bleu4
  meteor rouge_l cider spice``, null where not computable) and every test (system, baseline,
  metric, t, p, significant, n);
* ``per_utt.tsv`` -- the per-utterance scores the tests use;
* ``RESULTS.md`` (and ``results.tex``) -- the table in the layout of the paper's Tables 1-2 with one
  marker per baseline and a legend of test, units, normalisation and tokenisation;
* ``confusion_<system>.png``.

Modules: :mod:`~sedtk.score.ser` (UA/WA/F1), :mod:`~sedtk.score.asr` (WER/CER, jiwer),
:mod:`~sedtk.score.caption` (BLEU-4/METEOR/ROUGE-L/CIDEr/SPICE, pycocoevalcap),
:mod:`~sedtk.score.meteor` (one METEOR JVM), :mod:`~sedtk.score.significance` (paired t-tests,
bootstrap), :mod:`~sedtk.score.report` (output files), :mod:`~sedtk.score.inputs` (reading dirs).
"""

from sedtk.score.inputs import SystemSpec
from sedtk.score.systems import score_systems

__all__ = ["SystemSpec", "score_systems"]
