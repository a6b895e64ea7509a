"""ASR error rates (Sec. 4.5, Tables 2-3 "WER"): WER for English, CER for Chinese, through jiwer.

Normalisation, applied identically to references and hypotheses with jiwer transforms:

* English (WER): remove non-words in brackets (``[LAUGHTER]``, ``<unk>``: ``RemoveKaldiNonWords``),
  lower-case, remove Unicode punctuation (category P*, so ``don't`` -> ``dont``), whitespace to
  single spaces, strip, split into words.
* Chinese (CER): the same, then all whitespace removed and the text split into characters
  (Latin letters and digits count one per character).

Per utterance the error count is S+D+I of jiwer's alignment; corpus WER = sum(errors) /
sum(reference length), i.e. mean(errors) / mean(reference length) -- not the mean of per-utterance
rates.  An empty reference (e.g. a transcript that was only ``[LAUGHTER]``) contributes its
insertions to the numerator and nothing to the denominator, as in jiwer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sedtk.errors import InputError, OptionError

NORMALISATION = {
    "en": "WER on words: remove [..]/<..> tags, lower-case, remove Unicode punctuation (P*), collapse "
    "whitespace (jiwer RemoveKaldiNonWords, ToLowerCase, RemovePunctuation, RemoveWhiteSpace, "
    "RemoveMultipleSpaces, Strip)",
    "zh": "CER on characters: remove [..]/<..> tags, lower-case, remove Unicode punctuation (P*), remove all "
    "whitespace, split into characters (jiwer RemoveKaldiNonWords, ToLowerCase, RemovePunctuation, "
    "RemoveWhiteSpace, ReduceToListOfListOfChars)",
}


def transform(lang: str):
    """The jiwer transform used for ``lang`` (``en``: words, ``zh``: characters)."""
    import jiwer

    common = [jiwer.RemoveKaldiNonWords(), jiwer.ToLowerCase(), jiwer.RemovePunctuation()]
    if lang == "en":
        return jiwer.Compose(
            [
                *common,
                jiwer.RemoveWhiteSpace(replace_by_space=True),
                jiwer.RemoveMultipleSpaces(),
                jiwer.Strip(),
                jiwer.ReduceToListOfListOfWords(),
            ]
        )
    if lang == "zh":
        return jiwer.Compose(
            [*common, jiwer.RemoveWhiteSpace(replace_by_space=False), jiwer.ReduceToListOfListOfChars()]
        )
    raise OptionError(f"unknown language {lang!r} (en or zh)")


@dataclass
class AsrScores:
    metric: str  # "wer" or "cer"
    rate: float  # percent
    substitutions: int
    deletions: int
    insertions: int
    ref_tokens: int
    errors: np.ndarray  # per utterance S+D+I
    ref_len: np.ndarray  # per utterance reference tokens (after normalisation)


def score_asr(refs: list[str], hyps: list[str], lang: str) -> AsrScores:
    """WER (``en``) or CER (``zh``) in percent, with per-utterance error counts for the t-test."""
    import jiwer

    if len(refs) != len(hyps) or not refs:
        raise ValueError("score_asr: need the same, non-zero number of references and hypotheses")
    tr = transform(lang)
    process = jiwer.process_words if lang == "en" else jiwer.process_characters
    out = process(refs, hyps, reference_transform=tr, hypothesis_transform=tr)
    errors = np.zeros(len(refs), dtype=np.int64)
    for i, chunks in enumerate(out.alignments):
        for c in chunks:
            if c.type in ("substitute", "delete"):
                errors[i] += c.ref_end_idx - c.ref_start_idx
            elif c.type == "insert":
                errors[i] += c.hyp_end_idx - c.hyp_start_idx
    ref_len = np.array([len(r) for r in out.references], dtype=np.int64)
    total = int(ref_len.sum())
    if total == 0:
        raise InputError(
            "score_asr: every reference is empty after normalisation; the error rate is undefined"
        )
    rate = float(out.wer if lang == "en" else out.cer)
    return AsrScores(
        metric="wer" if lang == "en" else "cer",
        rate=100.0 * rate,
        substitutions=int(out.substitutions),
        deletions=int(out.deletions),
        insertions=int(out.insertions),
        ref_tokens=total,
        errors=errors,
        ref_len=ref_len,
    )
