"""Dev-set evaluation during training: LLM cross-entropy per task, and UA by constrained label scoring.

* Dev loss: mean answer-token cross-entropy (Eq. 4) per task of the stage, in eval mode (``z = mu``);
  the model-selection criterion ``best_loss`` is its mean over the stage's tasks (KL excluded, so
  that values stay comparable while beta is scheduled).
* Dev UA (unweighted accuracy, Sec. 4.3): for an emotion task, the description is generated greedily
  (``ser_sed``), then every label of the inventory is scored as the continuation after
  ``"<description> Emotion: "`` with :meth:`SEDModel.label_logprobs`; the arg-max is the prediction.
  For ``ser`` no generation is needed.  UA is the mean per-class recall over classes present.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sedtk.models.prompt import label_scoring
from sedtk.models.sed_model import SEDModel
from sedtk.train.data import LOAD_FAILED
from sedtk.train.distributed import DistInfo, all_reduce_sum, gather_objects
from sedtk.utils.drops import Drops


def _note_failed(batch, failures: Drops | None) -> None:
    if failures is not None:
        for key, reason in batch.failed:
            failures.add(LOAD_FAILED, key, detail=reason)


@torch.no_grad()
def dev_losses(
    model: SEDModel, loaders: dict, info: DistInfo, failures: Drops | None = None
) -> dict[str, float]:
    """``{task: mean CE}`` over each task's dev loader (sharded across ranks, summed).

    Utterances that could not be loaded are left out and added to ``failures``."""
    was = model.training
    model.eval()
    out = {}
    try:
        for task, loader in loaders.items():
            total, count = 0.0, 0.0
            for batch in loader:
                _note_failed(batch, failures)
                if not len(batch):
                    continue
                batch = batch.to(info.device)
                n_tokens = sum(len(model.prompt.answer_ids(t)) for t in batch.targets)
                ce = model(batch, task)["ce"]
                total += float(ce) * n_tokens
                count += n_tokens
            total, count = all_reduce_sum(info, [total, count])
            if count:
                out[task] = total / count
    finally:
        model.train(was)
    return out


@torch.no_grad()
def dev_ua(
    model: SEDModel,
    loader,
    task: str,
    template: str,
    inventory: Sequence[str],
    info: DistInfo,
    max_new_tokens: int = 128,
    failures: Drops | None = None,
) -> float | None:
    """Unweighted accuracy (%) of constrained label scoring on the dev loader's utterances (those
    that could not be loaded are left out and added to ``failures``)."""
    from sklearn.metrics import balanced_accuracy_score

    scoring = label_scoring(template)
    candidates = [scoring.candidate(label, inventory) for label in inventory]
    refs, preds = [], []
    for batch in loader:
        _note_failed(batch, failures)
        if not len(batch):
            continue
        batch = batch.to(info.device)
        if "{description}" in scoring.head:
            generated = model.generate(batch, task, max_new_tokens=max_new_tokens)
            prefixes = [scoring.prefix(g) for g in generated]
        else:
            prefixes = [scoring.prefix()] * len(batch)
        scores = model.label_logprobs(batch, task, candidates, prefixes)  # (B, K)
        preds += [inventory[int(k)] for k in scores.argmax(-1)]
        refs += list(batch.emotions)
    pairs = [p for part in gather_objects(info, list(zip(refs, preds, strict=True))) for p in part]
    if not pairs:
        return None
    y_true, y_pred = zip(*pairs, strict=True)
    return 100.0 * float(balanced_accuracy_score(list(y_true), list(y_pred)))
