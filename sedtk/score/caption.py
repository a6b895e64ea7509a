"""Speech emotion description (caption) metrics (Sec. 4.5, Table 1): BLEU@4, METEOR, ROUGE-L, CIDEr, SPICE.

All scores come from pycocoevalcap's own scorers on tokenised strings, one reference per
utterance (data dirs hold one caption per utterance).

Tokenisation (stated in every report):

* English: Stanford PTBTokenizer (CoreNLP 3.4.1 jar shipped with pycocoevalcap, ``-preserveLines
  -lowerCase``) and pycocoevalcap's punctuation-token filter -- what ``COCOEvalCap`` does.  It is run
  here with a temporary file outside site-packages (pycocoevalcap writes into its install dir).
* Chinese: character level -- every CJK ideograph is a token, a run of other letters/digits is one
  lower-cased token, punctuation and whitespace are dropped.

PTB tokenisation is not line-independent (a period after a single letter is read as an
abbreviation or not depending on the next line), so references and hypotheses are tokenised as two
batches in key order, exactly as ``COCOEvalCap`` does, never deduplicated or re-ordered.

Notes on the scorers:

* BLEU-4 corpus score uses pycocoevalcap's "closest" reference length; the per-utterance BLEU-4
  (used by the t-test) is pycocoevalcap's smoothed sentence BLEU, whose mean is not corpus BLEU.
* METEOR 1.5 runs with ``-l en -norm`` (English stemmer/synonyms/paraphrases; on Chinese characters
  only exact matches count).  Its corpus score aggregates statistics, not the mean of segments.
* CIDEr is pycocoevalcap's CIDEr-D (n=4, sigma=6, clipping, x10).  Its IDF is computed from the
  references of the utterances being scored, so a system's CIDEr depends on the whole test set:
  systems are comparable only on the same utterance set (which the t-test enforces).
* ROUGE-L corpus score is the mean of sentence scores (beta=1.2).
* SPICE needs Stanford CoreNLP 3.6.0 jars in pycocoevalcap's ``spice/lib``; they are downloaded at
  first use, which cannot work offline, so SPICE is computed only when they are already there
  (``tools/install_spice.sh``).  SPICE parses English scene graphs; on Chinese it is of little meaning.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sedtk.errors import OptionError

TOKENISATION = {
    "en": "Stanford PTBTokenizer (pycocoevalcap's CoreNLP 3.4.1, -preserveLines -lowerCase), "
    "punctuation tokens removed, references and hypotheses tokenised as two batches in utterance order, "
    "as in pycocoevalcap's COCOEvalCap",
    "zh": "character level: each CJK character is one token, a run of other letters/digits is one "
    "lower-cased token, punctuation and whitespace dropped",
}

#: metric key -> pycocoevalcap scorer name
SCORERS = {"bleu4": "Bleu", "rouge_l": "Rouge", "cider": "Cider"}
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


# ----------------------------------------------------------------------------- tokenisation

_ZH_TOKEN = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]"
    r"|[^\W_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]+"
)


def char_tokenise(text: str) -> str:
    """Chinese character-level tokens separated by spaces: ``"女声，Happy!"`` -> ``"女 声 happy"``."""
    return " ".join(_ZH_TOKEN.findall(text.lower()))


def ptb_tokenise(texts: Sequence[str], java: str = "java") -> list[str]:
    """pycocoevalcap's PTB tokenisation of each text (one JVM for all of them)."""
    from pycocoevalcap.tokenizer import ptbtokenizer as ptb

    if not texts:
        return []
    jar = Path(ptb.__file__).resolve().parent / ptb.STANFORD_CORENLP_3_4_1_JAR
    if not jar.exists():
        raise FileNotFoundError(f"{jar}: PTB tokenizer jar not found (reinstall pycocoevalcap)")
    body = "\n".join(" ".join(t.split()) for t in texts)  # one line per text, as pycocoevalcap
    fd, tmp = tempfile.mkstemp(prefix="sedtk-ptb-", suffix=".txt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body.encode("utf-8"))
        cmd = [
            java,
            "-cp",
            str(jar),
            "edu.stanford.nlp.process.PTBTokenizer",
            "-preserveLines",
            "-lowerCase",
            tmp,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, check=False)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"PTB tokenisation needs a Java runtime: {java!r} is not on PATH"
            ) from None
    finally:
        os.unlink(tmp)
    if proc.returncode != 0:
        raise RuntimeError(
            f"PTBTokenizer failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}"
        )
    lines = proc.stdout.decode("utf-8").split("\n")
    if len(lines) < len(texts) or any(line.strip() for line in lines[len(texts) :]):
        raise RuntimeError(f"PTBTokenizer returned {len(lines)} lines for {len(texts)} captions")
    punct = set(ptb.PUNCTUATIONS)
    return [" ".join(w for w in line.rstrip().split(" ") if w not in punct) for line in lines[: len(texts)]]


def tokenise(texts: Sequence[str], lang: str) -> list[str]:
    """Tokenise captions for the scorers: PTB for ``en``, characters for ``zh``."""
    if lang == "en":
        return ptb_tokenise(texts)
    if lang == "zh":
        return [char_tokenise(t) for t in texts]
    raise OptionError(f"unknown caption language {lang!r} (en or zh)")


def tokenise_batches(batches: Sequence[tuple[Sequence[str], str]]) -> list[list[str]]:
    """:func:`tokenise` of several ``(texts, lang)`` batches, the PTB JVMs running side by side.

    Each batch is still tokenised as one PTB input (the same lines as a batch-by-batch run).
    """
    from concurrent.futures import ThreadPoolExecutor

    if len(batches) <= 1:
        return [tokenise(texts, lang) for texts, lang in batches]
    with ThreadPoolExecutor(max_workers=min(len(batches), os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda b: tokenise(*b), batches))  # threads wait on the JVM subprocesses


# ----------------------------------------------------------------------------- SPICE


def spice_lib_dir() -> Path:
    import pycocoevalcap.spice as spice_pkg

    return Path(spice_pkg.__file__).resolve().parent / "lib"


def spice_status(lib_dir: Path | None = None) -> tuple[bool, str]:
    """(available, reason): SPICE runs only when its Stanford CoreNLP 3.6.0 jars are installed."""
    lib_dir = lib_dir or spice_lib_dir()
    missing = [j for j in SPICE_JARS if not (lib_dir / j).exists()]
    if missing:
        return False, (
            f"SPICE not computed: {', '.join(missing)} missing from {lib_dir} (SPICE would download them "
            "at first use, which fails offline; run tools/install_spice.sh where there is internet)"
        )
    return True, f"SPICE jars found in {lib_dir}"


# ----------------------------------------------------------------------------- scoring


@dataclass
class CaptionScores:
    """Corpus scores (percent) and per-utterance scores (percent) of one system's captions."""

    metrics: dict[str, float | None] = field(default_factory=dict)
    per_utt: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_scorer(
    name: str, gts: Mapping[str, list[str]], res: Mapping[str, list[str]]
) -> tuple[float, list[float]]:
    """One pycocoevalcap scorer (``Bleu``: BLEU-4 only) -> (corpus, per-utterance), unscaled."""
    if name == "Bleu":
        from pycocoevalcap.bleu.bleu import Bleu

        score, scores = Bleu(4).compute_score(gts, res, verbose=0)
        return float(score[3]), [float(s) for s in scores[3]]
    if name == "Rouge":
        from pycocoevalcap.rouge.rouge import Rouge

        score, scores = Rouge().compute_score(gts, res)
    elif name == "Cider":
        from pycocoevalcap.cider.cider import Cider

        score, scores = Cider().compute_score(gts, res)
    elif name == "Spice":
        from pycocoevalcap.spice.spice import Spice

        score, items = Spice().compute_score(gts, res)
        scores = [item["All"]["f"] for item in items]
    else:
        raise OptionError(f"unknown scorer {name!r}")
    return float(score), [float(s) for s in scores]


# ----------------------------------------------------------------------------- sharded scoring
#
# BLEU, ROUGE-L and CIDEr score each utterance on its own once two corpus-wide quantities are fixed:
# BLEU's corpus score adds up n-gram match counts, CIDEr's IDF counts n-grams over *all* references.
# A shard of utterances is therefore scored by pycocoevalcap's own scorer objects, with the shard's
# hypotheses and the whole reference set, and the shards are joined exactly (integer sums, per-utterance
# scores in utterance order).  The only arithmetic written here is BLEU's corpus formula applied to the
# summed counts, which is pycocoevalcap's ``BleuScorer.compute_score`` formula.

SHARDABLE = ("Bleu", "Rouge", "Cider")


def _bleu_shard(gts, res, keys) -> tuple[list[float], dict]:
    """Per-utterance BLEU-4 of ``keys`` and the shard's summed counts (for the corpus score)."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=4)
    for k in keys:
        scorer += (res[k][0], gts[k])
    _, per = scorer.compute_score(option="closest", verbose=0)
    counts = {"testlen": scorer._testlen, "reflen": scorer._reflen, "guess": [0] * 4, "correct": [0] * 4}
    for comps in scorer.ctest:
        for key in ("guess", "correct"):
            for n in range(4):
                counts[key][n] += comps[key][n]
    return [float(s) for s in per[3]], counts


def _bleu_corpus(counts: Sequence[dict]) -> float:
    """BLEU-4 from summed shard counts: ``BleuScorer.compute_score``'s corpus formula."""
    import math

    small, tiny = 1e-9, 1e-15
    testlen = sum(c["testlen"] for c in counts)
    reflen = sum(c["reflen"] for c in counts)
    bleu = 1.0
    for n in range(4):
        correct = sum(c["correct"][n] for c in counts)
        guess = sum(c["guess"][n] for c in counts)
        bleu *= float(correct + tiny) / (guess + small)
    bleu4 = bleu ** (1.0 / 4)
    ratio = (testlen + tiny) / (reflen + small)
    if ratio < 1:
        bleu4 *= math.exp(1 - 1 / ratio)
    return bleu4


def _cider_shard(gts, res, keys) -> list[float]:
    """CIDEr-D of ``keys`` with the IDF of every reference in ``gts`` (pycocoevalcap's ``CiderScorer``).

    The shard's utterances come first in the scorer's reference list, the rest follow, so its
    ``compute_cider`` pairs exactly the shard's (hypothesis, references) while ``len(crefs)`` and the
    document frequencies cover the whole test set, as in a single run.
    """
    from pycocoevalcap.cider.cider_scorer import CiderScorer, cook_refs

    scorer = CiderScorer(n=4, sigma=6.0)
    for k in keys:
        scorer += (res[k][0], gts[k])
    mine = set(keys)
    scorer.crefs.extend(cook_refs(gts[k]) for k in gts if k not in mine)
    scorer.compute_doc_freq()
    return [float(s) for s in scorer.compute_cider()]


def _rouge_shard(gts, res, keys) -> list[float]:
    from pycocoevalcap.rouge.rouge import Rouge

    r = Rouge()
    return [float(r.calc_score(res[k], gts[k])) for k in keys]


def score_shard(name: str, gts, res, keys: Sequence[str]):
    """One shard of a :data:`SHARDABLE` scorer (runs in a worker process)."""
    if name == "Bleu":
        return _bleu_shard(gts, res, keys)
    if name == "Cider":
        return _cider_shard(gts, res, keys)
    if name == "Rouge":
        return _rouge_shard(gts, res, keys)
    raise OptionError(f"scorer {name!r} cannot be sharded ({', '.join(SHARDABLE)} can)")


def join_shards(name: str, parts: Sequence) -> tuple[float, list[float]]:
    """(corpus, per-utterance) from the shards of one scorer, in shard order."""
    if name == "Bleu":
        per = [s for p, _ in parts for s in p]
        return _bleu_corpus([c for _, c in parts]), per
    per = [s for p in parts for s in p]
    return float(np.mean(np.array(per))), per


def _sub(d: Mapping[str, list[str]], keys: Sequence[str]) -> dict[str, list[str]]:
    return {k: d[k] for k in keys}


def split_keys(keys: Sequence[str], shards: int) -> list[list[str]]:
    """``keys`` in order, cut into ``shards`` contiguous pieces of near-equal size."""
    keys = list(keys)
    shards = max(1, min(shards, len(keys)))
    step, extra = divmod(len(keys), shards)
    out, start = [], 0
    for i in range(shards):
        end = start + step + (1 if i < extra else 0)
        out.append(keys[start:end])
        start = end
    return out


def as_coco(keys: Sequence[str], texts: Sequence[str]) -> dict[str, list[str]]:
    return {k: [t] for k, t in zip(keys, texts, strict=True)}


def score_caption_sets(
    sets: Sequence[tuple[Sequence[str], Sequence[str], Sequence[str]]],
    meteor=None,
    spice: bool = False,
    jobs: int = 1,
) -> list[CaptionScores]:
    """Score several systems' tokenised ``(keys, refs, hyps)`` with every caption metric.

    METEOR runs in ``meteor``'s JVM (a :class:`~sedtk.score.meteor.MeteorScorer`; ``None`` skips it),
    driven from a background thread, so the JVM works while BLEU, ROUGE-L, CIDEr (and SPICE) run
    here (``jobs=1``) or in ``jobs`` spawned worker processes, BLEU, ROUGE-L and CIDEr each cut into
    ``jobs`` utterance shards (see :func:`score_shard`).  The joined numbers equal a serial run's.
    """
    import threading
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    names = ["Cider", "Bleu", "Rouge"] + (["Spice"] if spice else [])
    coco = [(as_coco(keys, refs), as_coco(keys, hyps)) for keys, refs, hyps in sets]
    tasks = [(i, name) for name in names for i in range(len(sets))]
    results: dict[tuple[int, str], tuple[float, list[float]] | BaseException] = {}

    def collect_meteor() -> None:
        try:
            for i, (gts, res) in enumerate(coco):
                results[(i, "Meteor")] = meteor.compute_score(gts, res)
        except BaseException as e:  # re-raised in the caller's thread below
            results[(-1, "Meteor")] = e

    meteor_thread = None
    if meteor is not None:
        meteor_thread = threading.Thread(target=collect_meteor, name="sedtk-meteor", daemon=True)
        meteor_thread.start()
    if jobs > 1:
        # Every shardable scorer is cut into ``jobs`` utterance shards (CIDEr alone is ~half the work),
        # SPICE runs whole; the biggest pieces are submitted first.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures: dict[tuple[int, str], list] = {}
            for i, name in sorted(tasks, key=lambda t: t[1] != "Cider"):
                gts, res = coco[i]
                if name in SHARDABLE:
                    futures[(i, name)] = [
                        pool.submit(
                            score_shard,
                            name,
                            gts if name == "Cider" else _sub(gts, part),
                            _sub(res, part),
                            part,
                        )
                        for part in split_keys(list(gts), jobs)
                    ]  # CIDEr's IDF needs every reference; BLEU and ROUGE-L only the shard's
                else:
                    futures[(i, name)] = [pool.submit(run_scorer, name, gts, res)]
            for t, futs in futures.items():
                try:
                    parts = [f.result() for f in futs]
                    results[t] = join_shards(t[1], parts) if t[1] in SHARDABLE else parts[0]
                except Exception as e:  # SPICE may fail at run time; the others re-raise below
                    results[t] = e
    else:
        for t in tasks:
            try:
                results[t] = run_scorer(t[1], *coco[t[0]])
            except Exception as e:
                results[t] = e
    if meteor_thread is not None:
        meteor_thread.join()
        if (-1, "Meteor") in results:
            raise results[(-1, "Meteor")]

    out = []
    for i in range(len(sets)):
        cs = CaptionScores()
        for key, name in (
            ("bleu4", "Bleu"),
            ("meteor", "Meteor"),
            ("rouge_l", "Rouge"),
            ("cider", "Cider"),
            ("spice", "Spice"),
        ):
            r = results.get((i, name))
            if r is None:
                cs.metrics[key] = None
                continue
            if isinstance(r, BaseException):
                if name != "Spice":
                    raise r
                cs.metrics[key] = None
                cs.notes.append(
                    f"SPICE failed ({type(r).__name__}: {r}); SPICE 1.0 needs Java 8 or 11 and a writable "
                    "pycocoevalcap/spice dir; the other metrics are unaffected"
                )
                continue
            corpus, per = r
            cs.metrics[key] = 100.0 * corpus
            cs.per_utt[key] = 100.0 * np.asarray(per, dtype=float)
        out.append(cs)
    return out
