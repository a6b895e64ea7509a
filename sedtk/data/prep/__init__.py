"""Corpus preparation: turn a corpus release into Kaldi-style data dirs (paper Sec. 4, "Datasets").

One module per corpus, each with ``prepare(src, out, **options) -> PrepReport``; :data:`PREPARERS`
maps the corpus name to it; the helpers they share are in :mod:`sedtk.data.prep.common`.
Output names are fixed so that later stages need no glue:

============  ==================================================================================
corpus        data dirs written under OUT
============  ==================================================================================
iemocap       ``all``, ``fold{1..5}/{train,dev,test}`` (leave-one-session-out, fold k tests Session k)
meld          ``train``, ``dev``, ``test`` (official split); 16 kHz mono wavs in ``audio/<split>/``
speechcraft   ``all``, ``train``, ``dev``, ``test`` (dev, test: disjoint deterministic 1% of recordings)
emosec        ``test`` (SECap's public test set; zero-shot SED evaluation)
emobox        ``all``, ``fold<k>/{train,dev,test}`` of any EmoBox corpus (its folds and label inventory)
============  ==================================================================================

Every run also writes ``OUT/prep_report.json`` (counts per split and label, skipped items with
reasons), ``OUT/prep_report.txt`` (the same for people) and, last, ``OUT/.prep_done.json`` with the
options used.  A preparation left with nothing usable still writes both reports, and its error
counts every skip reason with examples.  :func:`prepare_corpus` skips a corpus whose marker and
outputs exist with the same options (``nj`` does not count: it changes speed, not results);
``force=True`` redoes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sedtk.data.prep import emobox, emosec, iemocap, meld, speechcraft
from sedtk.data.prep.common import (
    MARKER,
    PREP_FORMAT,
    REPORT_TXT,
    SPEED_OPTIONS,
    PrepFailed,
    PrepReport,
    is_done,
    normalise_options,
)
from sedtk.errors import OptionError
from sedtk.utils.io import atomic_write_text

#: corpus name -> ``prepare(src, out, **options) -> PrepReport``
PREPARERS: dict[str, Callable[..., PrepReport]] = {
    "iemocap": iemocap.prepare,
    "meld": meld.prepare,
    "speechcraft": speechcraft.prepare,
    "emosec": emosec.prepare,
    "emobox": emobox.prepare,
}


def prepare_corpus(
    corpus: str, src: str | os.PathLike, out: str | os.PathLike, force: bool = False, **options: Any
) -> PrepReport:
    """Prepare ``corpus`` from ``src`` into ``out`` unless an identical preparation is already there.

    Options left as ``None`` take the preparer's default; an option the corpus does not take is an
    error naming the options it does take.
    """
    if corpus not in PREPARERS:
        raise OptionError(f"unknown corpus {corpus!r}; known corpora: {', '.join(sorted(PREPARERS))}")
    fn = PREPARERS[corpus]
    src, out = Path(src).resolve(), Path(out).resolve()
    if not src.exists():
        raise FileNotFoundError(f"{src}: corpus source not found")
    opts = normalise_options(fn, options, corpus)
    marker = {
        "corpus": corpus,
        "src": str(src),
        "format": PREP_FORMAT,
        "options": {k: v for k, v in opts.items() if k not in SPEED_OPTIONS},
    }
    if not force:
        done = is_done(out, marker)
        if done is not None:
            return done
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)  # an interrupted run must not look finished
    try:
        report = fn(src, out, **opts)
    except PrepFailed as e:  # the reasons go to the report file too
        e.report.options = marker["options"]
        e.report.save(out)
        raise PrepFailed(f"{e}; every skipped item: {out / REPORT_TXT}", e.report) from None
    report.options = marker["options"]
    report.save(out)
    atomic_write_text(out / MARKER, json.dumps(marker, indent=2) + "\n")
    return report
