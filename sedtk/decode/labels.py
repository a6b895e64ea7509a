"""Reading the emotion label out of a generated answer, and the label posterior.

The paper does not say how the label is read from the generated text (``paper/README.md``).  sedtk
offers three methods, chosen with ``--label-method``:

``parse``
    Parse the generated answer against the label inventory (the ``Emotion: <word>`` field that
    sedtk's SER-SED targets end with, then any emotion word or synonym, via
    :func:`sedtk.data.emotions.parse_emotion`).  An answer that names no label of the inventory is a
    *parse failure*: it gets :data:`UNPARSED_LABEL`, which is never a correct label.
``score``
    Constrained scoring: the log-probability of each label's continuation (``" <word>."`` after the
    generated description and ``" Emotion:"``) under the model; the label is the arg-max of the
    posterior ``softmax`` over the K label log-probabilities.
``parse+score`` (default)
    The parsed label; where parsing fails, the scored one.  Parse failures are still counted.

The posterior is computed for every method (it is what ``sedtk decode`` prints as the probability),
so the three methods differ only in which label is written to ``utt2emo``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sedtk.data.emotions import concept_of, map_to_inventory, parse_emotion
from sedtk.errors import InputError, OptionError

LABEL_METHODS = ("parse", "score", "parse+score")
DEFAULT_LABEL_METHOD = "parse+score"
#: Written to ``utt2emo`` when ``--label-method parse`` cannot read a label (counted as wrong by scoring).
UNPARSED_LABEL = "<unk>"

DEFAULT_MARKER = "Emotion:"


def split_description(answer: str, marker: str | None = DEFAULT_MARKER) -> str:
    """The description part of a SER-SED answer: the text before its last label ``marker``.

    ``marker`` is the literal text before ``{emotion}`` in the target template (``"Emotion:"`` for
    ``"{description} Emotion: {emotion}."``), matched case-insensitively.  An answer without it is
    returned whole: the caption may still describe the speech when the model forgot the label field.
    """
    text = " ".join(answer.split())
    if marker:
        i = text.lower().rfind(marker.lower())
        if i >= 0:
            return text[:i].strip()
    return text


def check_label_method(method: str) -> str:
    """Validate a ``--label-method`` value (raises ValueError naming the choices)."""
    if method not in LABEL_METHODS:
        raise OptionError(f"unknown label method {method!r}; choose one of {', '.join(LABEL_METHODS)}")
    return method


def softmax(logprobs: Sequence[float]) -> list[float]:
    """Numerically stable softmax of K label log-probabilities (sums to 1)."""
    if not logprobs:
        raise ValueError("softmax of an empty label set")
    finite = [x for x in logprobs if math.isfinite(x)]
    if not finite:  # every continuation impossible: say so with a uniform distribution
        return [1.0 / len(logprobs)] * len(logprobs)
    m = max(finite)
    exps = [math.exp(x - m) if math.isfinite(x) else 0.0 for x in logprobs]
    total = sum(exps)
    return [e / total for e in exps]


@dataclass
class LabelDecision:
    """The label of one utterance and how it was reached."""

    label: str
    parsed: str | None  # the parsed label, None on a parse failure
    scored: str | None  # arg-max of the posterior, None when no posterior was computed
    posterior: dict[str, float] | None  # label -> probability (inventory order), sums to 1
    parse_failed: bool

    @property
    def probability(self) -> float | None:
        """The posterior probability of the chosen label (None when it is not in the posterior)."""
        if self.posterior is None:
            return None
        return self.posterior.get(self.label)


def decide_label(
    answer: str,
    inventory: Sequence[str],
    method: str = DEFAULT_LABEL_METHOD,
    logprobs: Sequence[float] | None = None,
) -> LabelDecision:
    """Choose the label of one answer with ``method``; ``logprobs``: the K label scores, inventory order."""
    check_label_method(method)
    parsed = parse_emotion(answer, inventory)
    posterior = scored = None
    if logprobs is not None:
        if len(logprobs) != len(inventory):
            raise ValueError(f"{len(logprobs)} label scores for an inventory of {len(inventory)} labels")
        probs = softmax(list(logprobs))
        posterior = dict(zip(inventory, probs, strict=True))
        scored = inventory[max(range(len(probs)), key=probs.__getitem__)]
    if method in ("score", "parse+score") and scored is None:
        raise OptionError(f"label method {method!r} needs the label scores (constrained scoring)")
    if method == "parse":
        label = parsed if parsed is not None else UNPARSED_LABEL
    elif method == "score":
        label = scored
    else:
        label = parsed if parsed is not None else scored
    return LabelDecision(
        label=label, parsed=parsed, scored=scored, posterior=posterior, parse_failed=parsed is None
    )


def resolve_inventory(
    reference: Sequence[str] | None, model_inventory: Sequence[str] | None
) -> tuple[list[str], str]:
    """The inventory that labels are parsed into, and where it came from.

    The reference data dir's ``emotions`` wins when given (so that ``utt2emo`` uses the labels the
    scorer compares against; a model trained on MELD's ``joy`` is read into IEMOCAP's ``hap`` through
    concepts); otherwise the model's training inventory.  Raises ValueError when neither exists, and
    when a reference label has no concept the model could have learned (it could never be produced).
    """
    if reference:
        return list(reference), "data"
    if model_inventory:
        return list(model_inventory), "model"
    raise InputError(
        "no emotion inventory: the data dir has no 'emotions' file and the model records none; "
        "give one with --emotions FILE (one label per line)"
    )


def unreachable_labels(inventory: Sequence[str], model_inventory: Sequence[str] | None) -> list[str]:
    """Labels of ``inventory`` whose concept none of the model's training labels shares (a warning)."""
    if not model_inventory:
        return []
    learned = {concept_of(lab) or lab.lower() for lab in model_inventory}
    out = []
    for label in inventory:
        c = concept_of(label) or label.lower()
        if c not in learned and not any(map_to_inventory(m, [label]) for m in model_inventory):
            out.append(label)
    return out
