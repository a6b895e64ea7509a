"""What ``sedtk decode`` does once its options are parsed: check them, resolve the model, decode, show.

Audio files go through :func:`sedtk.decode.timeline.decode_audio_files` (whole, or as a timeline;
``--evidence`` attached there), a data dir through :func:`sedtk.decode.run.decode_data_dir`
(``evidence.jsonl`` written there) -- the same library functions the Python API
(:mod:`sedtk.api`) calls.  This module only adds the printing: panels or JSON lines on stdout,
progress and errors on stderr, and the exit status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.decode.decoder import DecodeOptions
from sedtk.errors import OptionError

logger = logging.getLogger("sedtk.decode")


@dataclass
class DecodeRequest:
    """One ``sedtk decode`` invocation: what to decode, where to, and how to show it."""

    paths: list[str] = field(default_factory=list)  # audio files (--wav and the arguments)
    data: Path | None = None  # a data dir (with ``out``)
    out: Path | None = None  # the decode dir (--data), or where timelines go (--wav)
    model: str | None = None  # --model (else $SEDTK_MODEL, else the recorded default)
    feats: Path | None = None
    nj: int = 1
    shard: tuple[int, int] | None = None  # --shard I/N: every N-th utterance from the I-th, no merge
    emotions: str | None = None  # --emotions: a file or 'a,b,c'
    segment: str = "auto"
    evidence: bool = False
    calibration: Path | None = None  # --calibration: the evidence check's bands (sedtk data calibrate)
    as_json: bool = False
    force: bool = False
    options: DecodeOptions = field(default_factory=DecodeOptions)

    def check(self) -> None:
        if self.data is None and not self.paths:
            raise OptionError(
                "nothing to decode: give audio files (--wav a.wav ...) or a data dir (--data DIR --out DIR)"
            )
        if self.data is not None and self.paths:
            raise OptionError("give either audio files or --data, not both")
        if self.data is not None and self.out is None:
            raise OptionError("--data needs --out DIR (where the decode is written)")
        if self.data is None and (self.feats is not None or self.nj != 1 or self.shard is not None):
            raise OptionError("--feats, --nj and --shard go with --data")
        if self.calibration is not None and not self.evidence:
            raise OptionError("--calibration goes with --evidence (the bands the claims are checked by)")
        self.options.check()


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``--shard I/N`` -> ``(I, N)``."""
    if text is None:
        return None
    i, sep, n = text.partition("/")
    if not (sep and i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n)):
        raise OptionError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 2/8")
    return int(i), int(n)


def run_decode(req: DecodeRequest, console=None) -> int:
    """Decode what ``req`` names and print it; the exit status (1 if anything failed)."""
    from transformers.utils import logging as hf_logging

    from sedtk.decode.decoder import read_inventory_arg
    from sedtk.decode.display import err_console
    from sedtk.decode.model_ref import resolve_model

    hf_logging.disable_progress_bar()  # "Loading weights" bars: noise between the results
    req.check()
    if req.calibration is not None:
        from sedtk.data.calibration import load_calibration

        req.calibration = load_calibration(req.calibration)  # a bad file is an error before decoding
    inventory = read_inventory_arg(req.emotions) if req.emotions else None
    ref = resolve_model(req.model)
    logger.info(f"model: {ref.describe()}")
    err = err_console()
    if req.data is not None:
        return _data_dir(req, ref.path, inventory, err)
    return _files(req, ref.path, inventory, console, err)


def _data_dir(req: DecodeRequest, model: Path, inventory, err) -> int:
    from sedtk.decode.display import summary_lines
    from sedtk.decode.run import decode_data_dir

    summary = decode_data_dir(
        model, req.data, req.out, req.options, feats=req.feats, nj=req.nj, emotions=inventory,
        force=req.force, evidence=req.evidence, calibration=req.calibration, shard=req.shard,
    )  # fmt: skip
    if req.shard is not None:
        return 0  # a shard's failures are retried and reported by the merging run
    for line, style in summary_lines(summary, req.out):
        err.print(line, style=style or None, markup=False)
    return 1 if summary["failed"] or summary["missing"] else 0


def _files(req: DecodeRequest, model: Path, inventory, console, err) -> int:
    from sedtk.decode.display import show_result, show_timeline
    from sedtk.decode.timeline import Timeline, decode_audio_files

    if console is None:
        from rich.console import Console

        console = Console(highlight=False)
    results = decode_audio_files(
        req.paths, model, req.options, segment=req.segment, out_dir=req.out, inventory=inventory,
        evidence=req.evidence, calibration=req.calibration, log=logger.info,
    )  # fmt: skip
    failed = 0
    for r in results:
        if isinstance(r, Timeline):
            failed += not show_timeline(r, req.as_json, console, err)
        else:
            failed += not show_result(r, req.as_json, console, err, model=str(model))
    if failed:
        n = len(set(req.paths))
        err.print(f"{failed} of {n} file(s) could not be decoded", style="red", markup=False)
        return 1
    return 0
