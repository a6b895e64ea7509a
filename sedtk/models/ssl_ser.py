"""The SSL-based SER baseline of Tab. 2 (Sys. 1-3: HuBERT-large, WavLM-large, wav2vec 2.0-large).

What the field means by an SSL SER baseline (s3prl's ``downstream/emotion``, EmoBox): a *frozen*
upstream's hidden layers, mixed by a softmax weighted sum (:class:`~sedtk.models.weighted_sum.WeightedSum`,
weights start at zero), then an utterance-level head.  Because Tab. 2 also reports a WER for these
systems, a CTC head over characters transcribes the speech, and the two heads are trained jointly::

    X (B, L, T, D) --WeightedSum_emo--> (B, T, D) --Linear--> (B, T, P) --mean over valid frames-->
                   (B, P) --Linear--> (B, K) logits; softmax = the emotion posterior
    X (B, L, T, D) --WeightedSum_ctc--> (B, T, D) --Linear--> (B, T, V + 1) CTC log-probs (blank = 0)

    loss = CE(emotion) + lambda * CTC(characters)               (lambda: model.ssl_ser.ctc_weight)

* The projector before pooling (width ``model.ssl_ser.projector_dim``, 256) is s3prl's emotion
  downstream's; its pooling is the mean over valid frames (padded frames never count).
* Each head has its own weighted sum, as s3prl gives every downstream its own featurizer.
* The character vocabulary is built from the training transcripts after the normalisation that the
  WER scorer applies (``[..]`` / ``<..>`` tags removed, lower case, punctuation removed, whitespace
  collapsed) and saved in the config (``model.ssl_ser.vocab``), as are the emotion classes
  (``model.ssl_ser.labels``): a checkpoint is self-contained.
* With ``model.ssl_ser.finetune_upstream`` (online features only) the upstream trains too; it stays
  in eval mode (no dropout / SpecAugment masking), as sedtk's upstream wrapper always does.

The model sits behind the same interface as :class:`~sedtk.models.sed_model.SEDModel`, so ``sedtk
train``, ``sedtk decode`` and ``sedtk score`` treat it like every other system.  Its task ``ser``
answers ``"{text} Emotion: {emotion}."`` (``prompt.targets.ser`` of the ``ssl_ser`` paper configs):
each training example then carries its transcript and its label, and both heads see every batch (the
loss above).  ``generate(batch, "asr")`` is the greedy CTC transcript; ``label_logprobs`` gives the
head's log-posterior of each label; there is no description (``ser_sed`` is refused).

For corpora without transcripts (EmoBox's lists), ``prompt.targets.ser: "Emotion: {emotion}."`` (no
``{text}``) with ``model.ssl_ser.ctc_weight: 0`` builds the model without a CTC head: the loss is
the CE alone and ``asr`` is refused.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from sedtk.config import Config, ModelConfig, PromptConfig
from sedtk.errors import CheckpointError, ConfigError, InputError, OptionError
from sedtk.models.prompt import label_scoring, make_target
from sedtk.models.weighted_sum import WeightedSum

TASKS = ("ser", "asr")
BLANK = 0
IGNORE = -100
_TAGS = re.compile(r"\[[^\]]*\]|<[^>]*>")


def normalise_transcript(text: str) -> str:
    """The WER scorer's normalisation: no ``[..]``/``<..>`` tags, lower case, no punctuation (P*)."""
    text = _TAGS.sub(" ", text or "").lower()
    text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return " ".join(text.split())


def build_vocab(texts: Iterable[str]) -> list[str]:
    """Sorted characters of the normalised transcripts (the CTC output units besides the blank)."""
    chars: set[str] = set()
    for t in texts:
        chars.update(normalise_transcript(t))
    return sorted(chars)


def transcript_template_parts(template: str) -> tuple[str, str]:
    """``prompt.targets.ser`` of an ssl_ser model, e.g. ``"{text} Emotion: {emotion}."``: the literal
    text before ``{text}`` and between ``{text}`` and ``{emotion}`` (checked to be well formed).
    A template without ``{text}`` (no CTC head) gives ``("", "")``."""
    if "{text}" not in template and template.count("{emotion}") == 1 and "{description}" not in template:
        return "", ""
    if template.count("{text}") != 1 or template.count("{emotion}") != 1 or "{description}" in template:
        raise ConfigError(
            f"prompt.targets.ser {template!r}: the ssl_ser model needs exactly one {{text}} and one "
            "{emotion} and no {description}, e.g. '{text} Emotion: {emotion}.' (each example carries "
            "its transcript for the CTC head and its label for the emotion head)"
        )
    before, rest = template.split("{text}")
    if "{emotion}" in before:
        raise ConfigError(f"prompt.targets.ser {template!r}: {{text}} must come before {{emotion}}")
    middle = rest.split("{emotion}")[0]
    return before, middle


class CharTokens:
    """Character ids of answers (what ``prompt.answer_ids`` means for this model: CTC units)."""

    def __init__(self, vocab: Sequence[str]):
        self.vocab = list(vocab)
        self.index = {c: i + 1 for i, c in enumerate(self.vocab)}  # 0 is the CTC blank

    def answer_ids(self, text: str) -> list[int]:
        """Ids of the normalised text; characters outside the vocabulary are dropped."""
        return [self.index[c] for c in normalise_transcript(text) if c in self.index]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.vocab[i - 1] for i in ids if 0 < i <= len(self.vocab))


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``(B, T, P), (B,) -> (B, P)``: mean over each utterance's valid frames only."""
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
    w = valid.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


class SSLSERModel(nn.Module):
    """Frozen SSL upstream -> weighted sums -> emotion head (posterior) and CTC head (transcript)."""

    kind = "ssl_ser"
    #: the denominators of the loss (:meth:`loss_counts`), in a fixed order
    LOSS_COUNTS = ("chars", "labelled")

    def __init__(self, cfg: ModelConfig, prompt_cfg: PromptConfig, upstream: nn.Module | None = None):
        super().__init__()
        s = cfg.ssl_ser
        if cfg.num_layers is None or cfg.feature_dim is None:
            raise ConfigError("model.num_layers and model.feature_dim must be known (from the features)")
        if not s.labels:
            raise ConfigError("model.ssl_ser.labels: no emotion classes (the training data has no utt2emo)")
        self.ser_template = prompt_cfg.targets["ser"]
        #: a CTC head (transcripts) unless prompt.targets.ser has no {text} (corpora without transcripts)
        self.has_ctc = "{text}" in self.ser_template
        if not self.has_ctc and float(s.ctc_weight) != 0:
            raise ConfigError(
                f"prompt.targets.ser {self.ser_template!r}: the ssl_ser model needs exactly one {{text}} "
                "(each example carries its transcript for the CTC head), e.g. '{text} Emotion: {emotion}.'; "
                "for a corpus without transcripts set model.ssl_ser.ctc_weight: 0 (no CTC head)"
            )
        if self.has_ctc and not s.vocab:
            raise ConfigError(
                "model.ssl_ser.vocab: no characters (the training data has no transcripts; for such a "
                "corpus set prompt.targets.ser to 'Emotion: {emotion}.', which trains no CTC head)"
            )
        self.cfg = cfg
        self.prompt_cfg = prompt_cfg
        self.labels = list(s.labels)
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        self.prompt = CharTokens(s.vocab or [])
        self._before, self._middle = transcript_template_parts(self.ser_template)
        d = cfg.feature_dim
        self.emotion_sum = WeightedSum(cfg.num_layers, cfg.layers, cfg.layer_norm)
        self.projector = nn.Linear(d, s.projector_dim)
        self.classifier = nn.Linear(s.projector_dim, len(self.labels))
        if self.has_ctc:
            self.ctc_sum = WeightedSum(cfg.num_layers, cfg.layers, cfg.layer_norm)
            self.ctc_head = nn.Linear(d, len(s.vocab) + 1)
        self.upstream = upstream
        self.finetune_upstream = bool(s.finetune_upstream)
        if self.finetune_upstream and upstream is None:
            raise ConfigError(
                "model.ssl_ser.finetune_upstream: the upstream is not loaded (features from a dump "
                "cannot be fine-tuned; set data.online_features: true)"
            )
        self.configure_training((), False)

    # -- set-up (the trainer's interface) -------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.classifier.weight.device

    def heads(self) -> dict[str, nn.Module]:
        heads = {"emotion": nn.ModuleList([self.emotion_sum, self.projector, self.classifier])}
        if self.has_ctc:
            heads["ctc"] = nn.ModuleList([self.ctc_sum, self.ctc_head])
        return heads

    def configure_training(self, train_branches=(), train_llm=False, descriptor_input=None) -> None:
        """Both heads always train; the upstream only with ``finetune_upstream``.

        The LLM model's arguments (branches, LLM, descriptor slot) do not apply and are ignored.
        """
        for head in self.heads().values():
            head.requires_grad_(True)
        if self.upstream is not None:
            for p in self.upstream.parameters():
                p.requires_grad_(self.finetune_upstream)

    def trainable_parameter_counts(self) -> dict[str, int]:
        out = {k: sum(p.numel() for p in m.parameters() if p.requires_grad) for k, m in self.heads().items()}
        if self.upstream is not None:
            out["upstream"] = sum(p.numel() for p in self.upstream.parameters() if p.requires_grad)
        return out

    def layer_weights(self) -> dict[str, torch.Tensor]:
        out = {"emotion": self.emotion_sum.normalized_weights().cpu()}
        if self.has_ctc:
            out["ctc"] = self.ctc_sum.normalized_weights().cpu()
        return out

    # -- features and heads ---------------------------------------------------------------------
    def features(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """SSL hidden states ``(B, L, T, D)`` float32 and lengths ``(B,)`` (dump or online upstream)."""
        from sedtk.models.sed_model import speech_features

        run = None
        if self.finetune_upstream and torch.is_grad_enabled() and self.upstream is not None:
            forward = getattr(type(self.upstream).forward, "__wrapped__", None)  # past its no_grad
            if forward is None:
                raise ConfigError(f"upstream {self.cfg.upstream!r} cannot be fine-tuned")

            def run(wavs):
                return forward(self.upstream, wavs)

        return speech_features(batch, self.device, self.upstream, run)

    def emotion_logits(self, hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, L, T, D) -> (B, K)``: weighted sum, projector, mean over valid frames, linear."""
        x = self.projector(self.emotion_sum(hidden))  # (B, T, P)
        return self.classifier(masked_mean(x, lengths))  # (B, K)

    def ctc_log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, L, T, D) -> (B, T, V + 1)`` log-probabilities over blank + characters."""
        return self.ctc_head(self.ctc_sum(hidden)).float().log_softmax(-1)

    def posterior(self, batch) -> torch.Tensor:
        """``(B, K)`` emotion posterior over :attr:`labels` (rows sum to 1)."""
        with self._eval_mode():
            hidden, lengths = self.features(batch)
            return self.emotion_logits(hidden, lengths).float().softmax(-1).cpu()

    # -- training -------------------------------------------------------------------------------
    def split_target(self, target: str, emotion: str | None) -> str | None:
        """The transcript inside a ``ser`` target built from ``prompt.targets.ser`` (None if absent)."""
        if emotion is None or not self.has_ctc:
            return None
        tail = (
            make_target(self.ser_template.split("{text}", 1)[1], emotion=emotion, inventory=self.labels) or ""
        )
        if not (target.startswith(self._before) and target.endswith(tail)):
            raise InputError(
                f"ssl_ser: target {target!r} does not follow prompt.targets.ser {self.ser_template!r}"
            )
        return target[len(self._before) : len(target) - len(tail)]

    def _ctc_loss(self, hidden, lengths, texts: Sequence[str | None]) -> tuple[torch.Tensor, int]:
        """Summed CTC loss over the utterances with a transcript, and their number of characters."""
        if not self.has_ctc:
            return hidden.sum() * 0.0, 0
        log_probs = self.ctc_log_probs(hidden)  # (B, T, V + 1)
        ids = [self.prompt.answer_ids(t) if t else [] for t in texts]
        rows = [i for i, x in enumerate(ids) if x]
        if not rows:
            return log_probs.sum() * 0.0, 0  # keeps the head in the graph (DDP) with no effect
        targets = torch.tensor([c for i in rows for c in ids[i]], dtype=torch.long, device=log_probs.device)
        target_lengths = torch.tensor([len(ids[i]) for i in rows], dtype=torch.long)
        lp = log_probs[rows].transpose(0, 1)  # (T, B', V + 1) as F.ctc_loss wants
        if lp.is_cuda and torch.are_deterministic_algorithms_enabled():
            # CUDA's CTC backward has no deterministic implementation (torch raises under
            # train.deterministic); the loss on a CPU copy is, and its gradient flows back to the GPU
            lp, targets = lp.cpu(), targets.cpu()
        loss = F.ctc_loss(
            lp,
            targets,
            lengths[rows].cpu(),
            target_lengths,
            blank=BLANK,
            reduction="sum",
            zero_infinity=True,  # an utterance shorter than its transcript contributes nothing
        )
        return loss.to(log_probs.device), int(target_lengths.sum())

    def _texts(self, batch, task: str) -> list[str | None]:
        """The CTC transcript of every utterance: the target (``asr``) or the one inside it (``ser``)."""
        if task == "asr":
            return list(batch.targets)
        emotions = list(batch.emotions or [None] * len(batch))
        return [self.split_target(t, e) for t, e in zip(batch.targets, emotions, strict=True)]

    def _labels(self, batch) -> list[int]:
        return [self.label_index.get(e, IGNORE) if e is not None else IGNORE for e in batch.emotions or []]

    def loss_counts(self, batch) -> dict[str, float]:
        """The denominators of this batch's loss without running it: CTC target characters and
        labelled utterances (summed over a step's micro-batches and processes, see ``forward``)."""
        task = batch.task
        chars = sum(len(self.prompt.answer_ids(t)) for t in self._texts(batch, task) if t)
        labelled = sum(1 for y in self._labels(batch) if y != IGNORE) if task == "ser" else 0
        return {"chars": float(chars), "labelled": float(labelled)}

    def forward(
        self,
        batch,
        task: str | None = None,
        beta: Mapping[str, float] | None = None,
        totals: Mapping[str, float] | None = None,
    ) -> dict:
        """Loss terms: ``loss = ce + ctc_weight * ctc`` (``ser``) or ``ctc_weight * ctc`` (``asr``).

        ``ce``: cross-entropy summed over the utterances whose label is a class of the model, divided
        by their number; ``ctc``: CTC loss summed over the target characters, divided by their
        number.  ``totals`` (:meth:`loss_counts` of a whole optimizer step) replace this batch's own
        numbers in ``loss``, so that a step's micro-batches add up to one batch's loss.  ``beta``
        (the LLM model's KL weights) does not apply.
        """
        task = task or batch.task
        if task not in TASKS:
            raise OptionError(f"ssl_ser: task {task!r} is not one it trains ({', '.join(TASKS)})")
        if task == "asr" and not self.has_ctc:
            raise OptionError(self._no_ctc)
        if batch.targets is None:
            raise ValueError("forward needs target texts")
        hidden, lengths = self.features(batch)
        lam = float(self.cfg.ssl_ser.ctc_weight)
        ctc_sum, n_chars = self._ctc_loss(hidden, lengths, self._texts(batch, task))
        chars = max(float(totals["chars"]), 1.0) if totals else max(n_chars, 1)
        terms = {"ctc": ctc_sum / max(n_chars, 1)}
        if task == "asr":
            terms["ce"] = terms["ctc"]
            terms["loss"] = lam * ctc_sum / chars
            return terms
        logits = self.emotion_logits(hidden, lengths)  # (B, K)
        y = torch.tensor(self._labels(batch), dtype=torch.long, device=logits.device)
        n_labelled = int((y != IGNORE).sum())
        if n_labelled:
            ce_sum = F.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="sum")
        else:
            ce_sum = logits.sum() * 0.0  # no labelled utterance in the batch
        labelled = max(float(totals["labelled"]), 1.0) if totals else max(n_labelled, 1)
        terms["ce"] = ce_sum / max(n_labelled, 1)
        terms["loss"] = ce_sum / labelled + lam * ctc_sum / chars
        return terms

    _no_ctc = (
        "ssl_ser: this model has no CTC head (prompt.targets.ser has no {text}: trained without "
        "transcripts), so it gives no transcript (asr)"
    )

    # -- inference (the decoder's interface) ----------------------------------------------------
    @contextlib.contextmanager
    def _eval_mode(self):
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was)

    def transcribe(self, hidden: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy CTC: best unit per frame, repeats merged, blanks removed."""
        best = self.ctc_log_probs(hidden).argmax(-1).cpu()  # (B, T)
        out = []
        for row, n in zip(best.tolist(), lengths.cpu().tolist(), strict=True):
            ids, prev = [], BLANK
            for u in row[: int(n)]:
                if u != prev and u != BLANK:
                    ids.append(u)
                prev = u
            out.append(" ".join(self.prompt.decode(ids).split()))
        return out

    def generate(self, batch, task: str, max_new_tokens: int = 256, num_beams: int = 1, **_kw) -> list[str]:
        """Answers in the model's formats: ``asr`` the CTC transcript; ``ser`` ``prompt.targets.ser``
        filled with the transcript and the arg-max label.  Greedy only (``num_beams`` is ignored)."""
        if task not in TASKS:
            raise OptionError(
                f"ssl_ser: no answer for task {task!r} (the SSL SER baseline gives a transcript and a "
                f"label: {', '.join(TASKS)}; it has no descriptions)"
            )
        if task == "asr" and not self.has_ctc:
            raise OptionError(self._no_ctc)
        with self._eval_mode():
            hidden, lengths = self.features(batch)
            texts = self.transcribe(hidden, lengths) if self.has_ctc else [""] * len(batch)
            if task == "asr":
                return texts
            best = self.emotion_logits(hidden, lengths).argmax(-1).tolist()
        return [
            self.ser_template.format(text=t, emotion=_word(self.labels[k], self.labels)).strip()
            for t, k in zip(texts, best, strict=True)
        ]

    def label_logprobs(self, batch, task: str, candidates: Sequence[str], prefix="") -> torch.Tensor:
        """``(B, K')`` log-posterior of the class each candidate names (``-inf`` for unknown ones).

        ``candidates`` are the LLM model's label continuations (``"angry."``), matched to classes
        through ``prompt.targets.ser``; ``prefix`` does not change an utterance-level posterior.
        """
        if not candidates:
            raise ValueError("label_logprobs: no candidates")
        scoring = label_scoring(self.ser_template)
        by_candidate = {scoring.candidate(label, self.labels): k for k, label in enumerate(self.labels)}
        with self._eval_mode():
            hidden, lengths = self.features(batch)
            logp = self.emotion_logits(hidden, lengths).float().log_softmax(-1).cpu()  # (B, K)
        out = torch.full((len(batch), len(candidates)), float("-inf"))
        for j, c in enumerate(candidates):
            if c in by_candidate:
                out[:, j] = logp[:, by_candidate[c]]
        return out

    # -- checkpoints ----------------------------------------------------------------------------
    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The heads' weights, and the upstream's when it is fine-tuned (never a frozen upstream)."""
        out = {f"{name}.{k}": v for name, m in self.heads().items() for k, v in m.state_dict().items()}
        if self.finetune_upstream and self.upstream is not None:
            out.update({f"upstream.{k}": v for k, v in self.upstream.state_dict().items()})
        return {k: v.detach().to("cpu").contiguous() for k, v in out.items()}

    def load_trained_state(self, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        groups: dict[str, dict[str, torch.Tensor]] = {"emotion": {}, "upstream": {}}
        if self.has_ctc:
            groups["ctc"] = {}
        for k, v in state.items():
            head, _, rest = k.partition(".")
            if head not in groups:
                raise CheckpointError(
                    f"{source}: unexpected weight {k!r} (not an ssl_ser checkpoint? an LLM model's "
                    "checkpoint cannot initialise the SSL SER baseline)"
                )
            groups[head][rest] = v
        for name, m in self.heads().items():
            try:
                m.load_state_dict(groups[name], strict=True)
            except RuntimeError as e:
                raise CheckpointError(
                    f"{source}: the {name} head does not fit this model (labels {self.labels}, "
                    f"{len(self.prompt.vocab)} characters): {e}"
                ) from None
        if groups["upstream"]:
            if self.upstream is None:
                raise CheckpointError(
                    f"{source}: holds a fine-tuned upstream; load it with the upstream (online features)"
                )
            self.upstream.load_state_dict(groups["upstream"], strict=True)


def _word(label: str, inventory) -> str:
    from sedtk.data.emotions import label_word

    return label_word(label, inventory)


# ----------------------------------------------------------------------------- building


def fill_from_data(cfg: Config, train_data) -> Config:
    """``model.ssl_ser.labels`` / ``vocab`` from the training data dir (kept when already set)."""
    s = cfg.model.ssl_ser
    labels = s.labels
    if not labels:
        labels = list(train_data.emotions or sorted(set(train_data.maps.get("utt2emo", {}).values())))
    vocab = s.vocab
    if not vocab:
        vocab = build_vocab(train_data.maps.get("text", {}).values())
    model = replace(cfg.model, ssl_ser=replace(s, labels=labels, vocab=vocab))
    return replace(cfg, model=model)


def build_ssl_ser(
    cfg: Config,
    device: torch.device | str = "cpu",
    feature_meta: Mapping | None = None,
    online: bool | None = None,
    train_data=None,
) -> tuple[SSLSERModel, Config]:
    """Build the baseline (loading the upstream when online); fills shapes, labels and vocabulary."""
    from sedtk.models.sed_model import upstream_and_shape

    online = cfg.data.online_features if online is None else online
    if cfg.model.ssl_ser.finetune_upstream and not online:
        raise ConfigError(
            "model.ssl_ser.finetune_upstream needs online features (data.online_features: true): "
            "a feature dump cannot be fine-tuned"
        )
    upstream, cfg = upstream_and_shape(cfg, device, feature_meta, online)
    if train_data is not None:
        cfg = fill_from_data(cfg, train_data)
    model = SSLSERModel(cfg.model, cfg.prompt, upstream=upstream)
    return model.to(device), cfg
