"""Decoding a batch of utterances with a trained model: generation, parsing, label posterior.

For each utterance and each task (``asr``, ``ser_sed``, ``ser``; Sec. 3.5, by default the tasks the
model was trained on, :func:`default_tasks`) the answer is generated greedily or with beam search from
the left-padded batch (:meth:`SEDModel.generate`, equal to one-by-one decoding).  The ASR answer is
the transcript; the SER-SED answer ``"{description} Emotion: {word}."`` gives the description and
the parsed label; every label of the inventory is also scored as the continuation of the answer's head
(:meth:`SEDModel.label_logprobs`), giving the posterior ``softmax`` over the K labels
(:mod:`sedtk.decode.labels`).  In inference ``z = mu`` (Sec. 3.2).

The SSL SER baseline (:mod:`sedtk.models.ssl_ser`) answers through the same calls: ``asr`` is its
greedy CTC transcript, ``ser`` its arg-max label, and the label scores are its emotion head's
log-posterior, so the posterior written is that head's softmax (over the decode inventory); it
writes no description.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sedtk.decode.labels import (
    DEFAULT_LABEL_METHOD,
    LabelDecision,
    check_label_method,
    decide_label,
    split_description,
)
from sedtk.decode.outputs import UttResult
from sedtk.errors import CheckpointError, OptionError
from sedtk.utils.device import pick_device
from sedtk.utils.tasks import EMOTION_TASKS

#: Audio files longer than this are decoded as a timeline of VAD segments of at most this length
#: (``sedtk decode --wav``, :mod:`sedtk.decode.timeline`), the paper configs' ``data.max_duration``.
DEFAULT_MAX_DURATION = 30.0
#: Data-dir utterances up to this long are decoded whole; longer ones through their VAD segments
#: (:mod:`sedtk.decode.segmented`).  It covers every IEMOCAP utterance (34.1 s at most) and MELD's
#: normal clips (41.0 s at most; its test set's 235 s and 305 s clips are segmented).  Decoding
#: memory at this length (``sedtk model memory --config paper/sys7_stage2 --max-duration 45``):
#: 20.6 GiB per GPU at batch 8 for Llama-3.1-8B in bfloat16, against 19.1 GiB at 30 s.
DATA_MAX_DURATION = 45.0


@dataclass
class DecodeOptions:
    """Generation and labelling options (``sedtk decode --help``)."""

    tasks: list[str] | None = None  # None: the tasks the model was trained on
    label_method: str = DEFAULT_LABEL_METHOD
    #: label scoring: mean log-probability per candidate token instead of the sum (LLM model only)
    label_length_norm: bool = False
    num_beams: int = 1
    max_new_tokens: int = 256
    batch_size: int = 8
    #: longest input decoded whole (s); None: DEFAULT_MAX_DURATION for files, DATA_MAX_DURATION for
    #: data dirs (:meth:`limit`)
    max_duration: float | None = None
    device: str = "auto"
    llm: str | None = None  # a local copy of the base LLM (overrides the checkpoint's config)
    upstream: str | None = None  # likewise for the SSL upstream
    checkpoint: str | None = None  # best_ua | best_loss | last (default: the first that exists)
    dtype: str | None = None  # LLM weights' dtype instead of the saved one (e.g. float32 on CPU)
    #: the no-speech control: the speech embeddings zeroed, same model and prompt (LLM model only)
    no_speech_control: bool = False

    def check(self) -> None:
        check_label_method(self.label_method)
        for name in ("num_beams", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.dtype is not None and self.dtype not in ("bfloat16", "float16", "float32"):
            raise OptionError(f"--dtype {self.dtype!r}: use bfloat16, float16 or float32")
        if self.max_duration is not None and self.max_duration <= 0:
            raise OptionError(f"--max-duration must be > 0, got {self.max_duration}")

    def limit(self, data_dir: bool = False) -> float:
        """The longest input decoded whole: ``max_duration``, else the default of the kind of input."""
        if self.max_duration is not None:
            return self.max_duration
        return DATA_MAX_DURATION if data_dir else DEFAULT_MAX_DURATION


def checkpoint_identity(ckpt: Path) -> dict:
    """What identifies a checkpoint's weights (a resumed decode must use the same)."""
    from sedtk.models.checkpoint import WEIGHTS, read_meta

    w = ckpt / WEIGHTS
    h = hashlib.sha256()
    with open(w, "rb") as f:  # the safetensors header and the first MiB: cheap and changes with the weights
        h.update(f.read(1 << 20))
    st = w.stat()
    meta = read_meta(ckpt)
    return {
        "path": str(ckpt.resolve()),
        "stage": meta.get("stage"),
        "step": meta.get("step"),
        "weights_bytes": st.st_size,
        "weights_sha256_head": h.hexdigest()[:16],
    }


class Decoder:
    """A loaded model with its label inventory and decoding options."""

    def __init__(
        self, model, config, inventory: Sequence[str], options: DecodeOptions, checkpoint: Path | None = None
    ):
        options.check()
        self.model = model
        self.config = config
        self.inventory = list(inventory)
        self.options = options
        self.checkpoint = checkpoint
        self.tasks = list(options.tasks) if options.tasks else default_tasks(config)
        if getattr(config.model, "kind", "llm") == "ssl_ser":
            bad = [t for t in self.tasks if t not in ("ser", "asr")]
            if bad:
                raise OptionError(
                    f"task {bad[0]!r}: the SSL SER baseline gives an emotion (ser) and a transcript (asr) "
                    "only; it writes no description"
                )
        known = set(config.prompt.instructions)
        for t in self.tasks:
            if t not in known:
                raise OptionError(
                    f"task {t!r}: the model has no prompt for it (it knows {', '.join(sorted(known))})"
                )
        from sedtk.models.prompt import label_scoring

        #: the task whose answer gives the label: SER-SED when decoded, else SER
        self.emotion_task = next((t for t in EMOTION_TASKS if t in self.tasks), None)
        self.marker = None
        if "ser_sed" in self.tasks:
            self.marker = label_scoring(config.prompt.targets["ser_sed"]).marker
        if self.emotion_task is not None:
            if not self.inventory:
                raise CheckpointError("an emotion task is decoded but the label inventory is empty")
            self.scoring = label_scoring(config.prompt.targets[self.emotion_task])
            self.candidates = [self.scoring.candidate(label, self.inventory) for label in self.inventory]
        if options.label_length_norm and getattr(config.model, "kind", "llm") == "ssl_ser":
            raise OptionError(
                "--label-length-norm applies to the LLM model's label scoring; the SSL SER baseline's "
                "posterior is its emotion head's softmax (drop the flag)"
            )
        if options.no_speech_control:
            if getattr(config.model, "kind", "llm") == "ssl_ser":
                raise OptionError(
                    "--no-speech-control zeroes the speech embeddings of the LLM model; the SSL SER "
                    "baseline has no LLM prior to measure (drop the flag)"
                )
            model.no_speech = True

    def with_inventory(self, inventory: Sequence[str]) -> Decoder:
        """The same loaded model, decoding into another label inventory."""
        return Decoder(self.model, self.config, inventory, self.options, self.checkpoint)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model_path: str | os.PathLike,
        options: DecodeOptions,
        inventory: Sequence[str] | None = None,
        online: bool = True,
    ) -> Decoder:
        """Load a trained model (experiment or checkpoint dir) for decoding raw audio (``online``) or dumps.

        ``inventory`` defaults to the model's training inventory (checkpoint ``meta.json``).
        """
        from sedtk.models.checkpoint import load_model, read_meta, require_checkpoint

        options.check()
        ckpt = require_checkpoint(model_path, options.checkpoint)
        from sedtk.utils.device import cuda_throughput

        device = pick_device(options.device)
        cuda_throughput(device)
        overrides = [f"model.dtype={options.dtype}"] if options.dtype else []
        model, cfg = load_model(
            ckpt,
            device=device,
            overrides=overrides,
            llm=options.llm,
            upstream=options.upstream,
            online=online,
        )
        if inventory is None:
            inventory = model_inventory(read_meta(ckpt))
            tasks = options.tasks or cfg.train.tasks
            if inventory is None and any(t in EMOTION_TASKS for t in tasks):
                raise CheckpointError(
                    f"{ckpt}: the checkpoint records no emotion inventory; give one with --emotions "
                    "(a file with one label per line, or labels separated by commas)"
                )
        return cls(model, cfg, inventory or [], options, checkpoint=ckpt)

    # -- decoding -------------------------------------------------------------------------------
    def decode_batch(self, batch, durations: Sequence[float | None]) -> list[UttResult]:
        """Decode one :class:`~sedtk.models.sed_model.SpeechBatch` into one result per utterance."""
        o = self.options
        n = len(batch)
        if batch.feats is None:
            # Run the frozen upstream once for all tasks and the label scoring (Sec. 3.1).
            import torch

            from sedtk.models.sed_model import SpeechBatch

            with torch.no_grad():
                hidden, lengths = self.model.features(batch)  # (B, L, T, D), (B,)
            batch = SpeechBatch(keys=list(batch.keys), feats=hidden, feat_lengths=lengths)
        results = [UttResult(key=k, duration=d) for k, d in zip(batch.keys, durations, strict=True)]
        for task in self.tasks:
            t0 = time.perf_counter()
            answers = self.model.generate(batch, task, max_new_tokens=o.max_new_tokens, num_beams=o.num_beams)
            share = (time.perf_counter() - t0) / n
            for r, a in zip(results, answers, strict=True):
                r.raw[task] = a
                r.seconds[task] = round(share, 6)
                if task == "asr":
                    r.transcript = a
                elif task == "ser_sed":
                    r.description = split_description(a, self.marker)
        if self.emotion_task is not None:
            answers = [r.raw[self.emotion_task] for r in results]
            t0 = time.perf_counter()
            prefixes = [self.scoring.prefix(a) for a in answers]
            norm = {"length_normalize": True} if o.label_length_norm else {}
            scores = self.model.label_logprobs(
                batch, self.emotion_task, self.candidates, prefixes, **norm
            )  # (B, K)
            share = (time.perf_counter() - t0) / n
            for i, r in enumerate(results):
                d: LabelDecision = decide_label(
                    answers[i], self.inventory, o.label_method, scores[i].tolist()
                )
                r.emotion, r.emotion_parsed, r.emotion_scored = d.label, d.parsed, d.scored
                r.posterior = {k: round(v, 6) for k, v in d.posterior.items()}
                r.parse_failed = d.parse_failed
                r.seconds["label_scoring"] = round(share, 6)
        return results


def default_tasks(config) -> list[str]:
    """The tasks decoded without ``--tasks``: those the model was trained on; the SSL SER baseline
    (``model.kind: ssl_ser``) also transcribes (its CTC head is trained with every ``ser`` batch)."""
    tasks = list(getattr(config.train, "tasks", []) or []) or ["asr"]
    ssl_ctc = "{text}" in config.prompt.targets.get("ser", "")  # no {text}: trained without transcripts
    if getattr(config.model, "kind", "llm") == "ssl_ser" and ssl_ctc and "asr" not in tasks:
        tasks.append("asr")
    return tasks


def model_inventory(meta: dict) -> list[str] | None:
    """The emotion labels a checkpoint was trained with (``meta.json``), or None if it records none."""
    for key in ("emotions", "inventory"):
        v = meta.get(key)
        if isinstance(v, list) and v:
            return [str(x) for x in v]
    return None


def read_inventory_arg(value: str) -> list[str]:
    """``--emotions``: a file with one label per line, or labels separated by commas."""
    from sedtk.data.datadir import read_label_list

    if Path(value).is_file():
        labels = read_label_list(value)
    else:
        labels = [x.strip() for x in value.split(",") if x.strip()]
    if not labels:
        raise OptionError(f"--emotions {value!r}: no labels (give a file or a comma-separated list)")
    if len(set(labels)) != len(labels):
        raise OptionError(f"--emotions {value!r}: a label is repeated")
    return labels


ProgressFn = Callable[[str], None]
