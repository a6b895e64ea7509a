"""The whole network of Figure 1: features -> content / descriptor branches -> prompt -> LLM.

``SEDModel`` reads like Sec. 3:

* :meth:`SEDModel.features`  -- frozen SSL hidden states ``X`` (Sec. 3.1), from a feature dump in the
  batch or from the online upstream;
* :meth:`SEDModel.encode`    -- per branch, the disentanglement block (Sec. 3.2, Eq. 2) and the adapter
  (Sec. 3.3, Eq. 3) giving ``S^Con`` and ``S^Des``;
* :meth:`SEDModel.forward`   -- the prompt (Sec. 3.4), the LLM cross-entropy ``L_LLM`` (Eq. 4), and the
  VIB loss ``L_LLM + beta_con KL_con + beta_des KL_des`` (Eq. 2) over the branches being trained;
  by default (``loss_normalization="tokens"``) per example, summed answer-token CE plus beta times
  the KL summed over valid frames and latent dims, the batch total divided by its answer tokens;
* :meth:`SEDModel.generate` and :meth:`SEDModel.label_logprobs` -- inference primitives for decoding.

What fills the ``<Speech descriptor>`` slot is ``descriptor_input``: ``features`` (the descriptor
branch), ``zeros`` (stage 1 of Sec. 3.5: "emotion descriptor tokens set to zero", as many zero vectors
as content tokens) or ``omit`` (an empty slot).

The *no-speech control* (``SEDModel.no_speech``, ``sedtk decode --no-speech-control``) replaces both
``S^Con`` and ``S^Des`` by zero vectors of the same lengths: the same model and the same prompt, with
nothing of the audio in it, so its answers are the LLM's prior alone (what a decode owes to the
speech is the difference to it).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from sedtk.config import Config, ModelConfig, PromptConfig
from sedtk.errors import CheckpointError, ConfigError, MissingKeyError, OptionError
from sedtk.models.adapter import Adapter
from sedtk.models.disentangle import DisentanglementBlock, PlainBlock
from sedtk.models.llm import load_llm, torch_dtype, trainable_llm_state
from sedtk.models.prompt import IGNORE_INDEX, PromptBuilder

BRANCHES = ("content", "descriptor")
DESCRIPTOR_INPUTS = ("features", "zeros", "omit")
#: ``train.loss_normalization``: ``tokens`` = Eq. 2 / 4 per example, batch sum / answer tokens (default);
#: ``mean`` = per-token mean CE + beta x per-frame mean KL (sedtk <= 0.1 weighting).
LOSS_NORMALIZATIONS = ("tokens", "mean")


# ----------------------------------------------------------------------------- batches


@dataclass
class SpeechBatch:
    """A batch of utterances: either padded features ``(B, L, T, D)`` or raw waveforms.

    ``targets`` (answer texts) are needed for :meth:`SEDModel.forward` only.
    """

    keys: list[str]
    feats: torch.Tensor | None = None  # (B, L, T, D)
    feat_lengths: torch.Tensor | None = None  # (B,)
    wavs: list[torch.Tensor] | None = None  # B x (T_i,) 16 kHz
    targets: list[str] | None = None
    emotions: list[str | None] | None = None
    task: str | None = None
    #: ``(key, reason)`` of the utterances that could not be loaded (left out; see sedtk.train.data)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str) -> SpeechBatch:
        return replace(
            self,
            feats=self.feats.to(device, non_blocking=True) if self.feats is not None else None,
            feat_lengths=self.feat_lengths.to(device) if self.feat_lengths is not None else None,
        )  # waveforms stay where they are: the upstream's feature extractor works on CPU arrays

    @classmethod
    def from_features(cls, keys: Sequence[str], feats: Sequence[torch.Tensor], **kw) -> SpeechBatch:
        """Pad per-utterance ``(L, T_i, D)`` features into ``(B, L, T, D)`` with lengths."""
        lengths = torch.tensor([f.shape[1] for f in feats], dtype=torch.long)
        l_, _, d = feats[0].shape
        out = feats[0].new_zeros(len(feats), l_, int(lengths.max()), d)  # (B, L, T, D)
        for i, f in enumerate(feats):
            out[i, :, : f.shape[1]] = f
        return cls(keys=list(keys), feats=out, feat_lengths=lengths, **kw)

    @classmethod
    def from_wavs(cls, keys: Sequence[str], wavs: Sequence[torch.Tensor], **kw) -> SpeechBatch:
        return cls(keys=list(keys), wavs=list(wavs), **kw)


@dataclass
class SpeechEmbeddings:
    """``S^Con`` and ``S^Des`` for a batch, with their token counts and the branches' KL terms.

    ``kl[b]`` is branch ``b``'s per-example KL ``(B,)`` summed over valid frames x latent dims;
    ``kl_frames[b]`` the valid frames it was summed over ``(B,)``.
    """

    content: torch.Tensor  # (B, Nc, H)
    content_lengths: torch.Tensor  # (B,)
    descriptor: torch.Tensor | None  # (B, Nd, H), None when the slot is omitted
    descriptor_lengths: torch.Tensor | None
    kl: dict[str, torch.Tensor] = field(default_factory=dict)
    kl_frames: dict[str, torch.Tensor] = field(default_factory=dict)

    def repeat(self, n: int) -> SpeechEmbeddings:
        """Each example repeated ``n`` times in a row (for scoring ``n`` continuations)."""

        def rep(t):
            return None if t is None else t.repeat_interleave(n, dim=0)

        return SpeechEmbeddings(
            rep(self.content),
            rep(self.content_lengths),
            rep(self.descriptor),
            rep(self.descriptor_lengths),
            {k: rep(v) for k, v in self.kl.items()},
            {k: rep(v) for k, v in self.kl_frames.items()},
        )


def speech_features(
    batch: SpeechBatch, device: torch.device, upstream: nn.Module | None, run_upstream=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, L, T, D)`` float32 hidden states and lengths ``(B,)``: the batch's dump, or the upstream
    run on its audio (``run_upstream(wavs)`` in place of ``upstream(wavs)``, e.g. to fine-tune it)."""
    if batch.feats is not None:
        return batch.feats.to(device, torch.float32), batch.feat_lengths.to(device)
    if batch.wavs is None:
        raise ValueError("batch holds neither features nor audio")
    if upstream is None:
        raise ConfigError("batch holds audio but the model has no upstream (train with data.online_features)")
    hidden, lengths = (run_upstream or upstream)(list(batch.wavs))
    return hidden.to(torch.float32), lengths.to(device)


# ----------------------------------------------------------------------------- branches


class Branch(nn.Module):
    """One path of Figure 1: disentanglement block (or plain weighted sum) -> adapter."""

    def __init__(self, block: nn.Module, adapter: Adapter):
        super().__init__()
        self.block = block
        self.adapter = adapter

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor):
        out = self.block(hidden, lengths)  # z: (B, T, Z)
        emb, emb_lengths = self.adapter(out.z, out.lengths)  # (B, T', H)
        return emb, emb_lengths, out.kl_sum, out.lengths  # kl_sum: (B,) or None


def make_branch(cfg: ModelConfig, num_layers: int, feature_dim: int, llm_dim: int) -> Branch:
    if cfg.feature_disentanglement:
        block: nn.Module = DisentanglementBlock(
            num_layers,
            feature_dim,
            cfg.encoder_dim,
            cfg.latent_dim,
            cfg.sigma_floor,
            cfg.layers,
            cfg.layer_norm,
        )
    else:
        block = PlainBlock(num_layers, feature_dim, cfg.layers, cfg.layer_norm)
    return Branch(block, Adapter(block.output_dim, cfg.adapter_dim, llm_dim, cfg.downsample))


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of token sequences."""
    n = min(len(x) for x in seqs)
    for j in range(n):
        if any(x[j] != seqs[0][j] for x in seqs):
            return j
    return n


# ----------------------------------------------------------------------------- Eq. 2 / Eq. 4


def vib_loss(
    ce_sum: torch.Tensor,
    n_tokens: int,
    kl: Mapping[str, torch.Tensor],
    kl_frames: Mapping[str, torch.Tensor],
    beta: Mapping[str, float],
    normalization: str = "tokens",
    totals: Mapping[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """The VIB objective of Eq. 2 with ``L_LLM`` of Eq. 4 for one batch.

    Args:
        ce_sum: cross-entropy summed over the batch's answer tokens (Eq. 4 summed over examples).
        n_tokens: the batch's answer tokens (end-of-turn tokens included).
        kl: per branch, ``(B,)`` KL per example summed over valid frames x latent dims.
        kl_frames: per branch, ``(B,)`` valid frames of each example.
        beta: weight of each branch that enters the loss (trained branches only).
        normalization: ``tokens`` -- ``(ce_sum + sum_b beta_b sum_i KL_b,i) / N`` (the paper's
            per-example weighting, scaled like a per-token mean); ``mean`` -- ``ce_sum / N +
            sum_b beta_b (sum_i KL_b,i / F)``.
        totals: the denominators ``{"tokens": N, "frames": F}`` of the whole optimizer step (every
            micro-batch of every process, :meth:`SEDModel.loss_counts` summed and all-reduced), so
            that the step's summed losses are the formula of one batch on any layout; default this
            batch's own ``n_tokens`` and frames.

    Returns ``loss``, ``ce`` (per answer token of this batch), ``kl_<b>`` (mean per-example KL) for
    every branch in ``kl`` and, with ``mean``, ``kl_<b>_frame`` (per-frame KL, the quantity that
    ``mean`` weights).
    """
    if normalization not in LOSS_NORMALIZATIONS:
        raise ConfigError(
            f"train.loss_normalization {normalization!r}: use one of {', '.join(LOSS_NORMALIZATIONS)}"
        )
    n = max(int(n_tokens), 1)
    n_total = max(float(totals["tokens"]), 1.0) if totals else n
    terms = {"ce": ce_sum / n}
    total = ce_sum
    loss = ce_sum / n_total
    for b, v in kl.items():
        frames = max(float(totals["frames"]), 1.0) if totals else kl_frames[b].sum().clamp(min=1)
        terms[f"kl_{b}"] = v.mean()
        if normalization == "mean":
            terms[f"kl_{b}_frame"] = v.sum() / kl_frames[b].sum().clamp(min=1)
        if b in beta:
            total = total + beta[b] * v.sum()
            if normalization == "mean":
                loss = loss + beta[b] * v.sum() / frames
    terms["loss"] = total / n_total if normalization == "tokens" else loss
    return terms


# ----------------------------------------------------------------------------- the model


class SEDModel(nn.Module):
    """HuBERT features -> two disentanglement blocks -> two adapters -> prompt -> LLM (Figure 1)."""

    #: the denominators of the loss (:meth:`loss_counts`), in a fixed order
    LOSS_COUNTS = ("tokens", "frames")

    def __init__(
        self,
        cfg: ModelConfig,
        prompt_cfg: PromptConfig,
        llm: nn.Module,
        tokenizer,
        upstream: nn.Module | None = None,
        loss_normalization: str = "tokens",
    ):
        super().__init__()
        if loss_normalization not in LOSS_NORMALIZATIONS:
            raise ConfigError(
                f"train.loss_normalization {loss_normalization!r}: "
                f"use one of {', '.join(LOSS_NORMALIZATIONS)}"
            )
        self.loss_normalization = loss_normalization
        if cfg.num_layers is None or cfg.feature_dim is None:
            raise ConfigError(
                "model.num_layers and model.feature_dim must be known (from the features) to build"
            )
        self.cfg = cfg
        self.prompt_cfg = prompt_cfg
        llm_dim = llm.get_input_embeddings().embedding_dim
        self.content = make_branch(cfg, cfg.num_layers, cfg.feature_dim, llm_dim)
        self.descriptor = make_branch(cfg, cfg.num_layers, cfg.feature_dim, llm_dim)
        self.llm = llm
        self.tokenizer = tokenizer
        self.prompt = PromptBuilder(
            tokenizer, prompt_cfg.system, prompt_cfg.instructions, date_string=prompt_cfg.date_string,
            emotions=prompt_cfg.emotions,
        )  # fmt: skip
        self.upstream = upstream
        self.descriptor_input = "features"
        #: the no-speech control: S^Con and S^Des replaced by zeros (module docstring)
        self.no_speech = False
        self.trainable_branches: tuple[str, ...] = ()
        self.train_llm = False
        self.configure_training((), False)

    # -- set-up -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.content.parameters()).device

    def branch(self, name: str) -> Branch:
        if name not in BRANCHES:
            raise MissingKeyError(f"unknown branch {name!r} ({', '.join(BRANCHES)})")
        return getattr(self, name)

    def configure_training(
        self, train_branches: Sequence[str], train_llm: bool, descriptor_input: str | None = None
    ):
        """Choose what trains (Sec. 3.5): the named branches, and the LLM's LoRA (or all) weights."""
        if descriptor_input is not None:
            if descriptor_input not in DESCRIPTOR_INPUTS:
                raise ConfigError(
                    f"descriptor_input {descriptor_input!r}: use one of {', '.join(DESCRIPTOR_INPUTS)}"
                )
            self.descriptor_input = descriptor_input
        for b in train_branches:
            self.branch(b)  # validates the name
        self.trainable_branches = tuple(train_branches)
        for b in BRANCHES:
            self.branch(b).requires_grad_(b in self.trainable_branches)
        self.train_llm = bool(train_llm) and self.cfg.llm_mode != "frozen"
        for name, p in self.llm.named_parameters():
            if self.cfg.llm_mode == "full":
                p.requires_grad_(self.train_llm)
            elif self.cfg.llm_mode == "lora":
                p.requires_grad_(self.train_llm and "lora_" in name)
            else:
                p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> SEDModel:
        """Frozen parts stay in eval mode (no VIB sampling or dropout in them)."""
        super().train(mode)
        for b in BRANCHES:
            if b not in self.trainable_branches:
                self.branch(b).eval()
        if not self.train_llm:
            self.llm.eval()
        if self.upstream is not None:
            self.upstream.eval()
        return self

    def trainable_parameter_counts(self) -> dict[str, int]:
        out = {}
        for name in (*BRANCHES, "llm"):
            out[name] = sum(p.numel() for p in getattr(self, name).parameters() if p.requires_grad)
        return out

    def layer_weights(self) -> dict[str, torch.Tensor]:
        """Softmax layer weights of each branch's weighted sum (for logging)."""
        return {b: self.branch(b).block.weighted_sum.normalized_weights().cpu() for b in BRANCHES}

    # -- Sec. 3.1 - 3.3 -----------------------------------------------------------------------
    def features(self, batch: SpeechBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """SSL hidden states ``X``: ``(B, L, T, D)`` float32 and lengths ``(B,)``."""
        return speech_features(batch, self.device, self.upstream)

    def _run_branch(self, name: str, hidden: torch.Tensor, lengths: torch.Tensor):
        grad = torch.is_grad_enabled() and name in self.trainable_branches
        with torch.set_grad_enabled(grad):
            return self.branch(name)(hidden, lengths)

    def encode(self, batch: SpeechBatch) -> SpeechEmbeddings:
        """``S^Con`` and ``S^Des`` (Eq. 3) for a batch."""
        hidden, lengths = self.features(batch)  # (B, L, T, D)
        c, c_len, kl_c, fr_c = self._run_branch("content", hidden, lengths)  # (B, Nc, H)
        kl, frames = ({"content": kl_c}, {"content": fr_c}) if kl_c is not None else ({}, {})
        if self.descriptor_input == "features":
            d, d_len, kl_d, fr_d = self._run_branch("descriptor", hidden, lengths)  # (B, Nd, H)
            if kl_d is not None:
                kl["descriptor"], frames["descriptor"] = kl_d, fr_d
        elif self.descriptor_input == "zeros":
            d, d_len = torch.zeros_like(c), c_len.clone()  # stage 1: descriptor tokens set to zero
        else:
            d = d_len = None
        if self.no_speech:  # the no-speech control: the same prompt and lengths, no audio in it
            c = torch.zeros_like(c)
            d = torch.zeros_like(d) if d is not None else None
        return SpeechEmbeddings(c, c_len, d, d_len, kl, frames)

    # -- Sec. 3.4 and Eq. 2 / 4 ---------------------------------------------------------------
    def _llm_inputs(self, task, emb: SpeechEmbeddings, answers=None, label_from=None, padding_side="right"):
        return self.prompt.assemble(
            task,
            self.llm.get_input_embeddings(),
            emb.content,
            emb.content_lengths,
            emb.descriptor,
            emb.descriptor_lengths,
            answers=answers,
            label_from=label_from,
            padding_side=padding_side,
        )

    def _lm_parts(self) -> tuple[nn.Module, nn.Module, float | None]:
        """The LLM's body (embeddings + decoder layers + final norm), its LM head, its logit soft-cap.

        Works for a plain causal LM and a PEFT-wrapped one (LoRA layers sit inside the body and head).
        """
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        body, head = base.get_decoder(), base.get_output_embeddings()
        if body is None or head is None or body is base:
            raise ConfigError(f"LLM {type(base).__name__}: cannot separate its decoder body from its LM head")
        return body, head, getattr(base.config, "final_logit_softcapping", None)

    def _head_logits(self, head: nn.Module, hidden: torch.Tensor, cap: float | None) -> torch.Tensor:
        logits = head(hidden).float()  # (N, V): only the rows asked for, never (B, S, V)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def _answer_logprobs(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of the labelled tokens (``labels != -100``), teacher-forced.

        The LLM body gives hidden states; only the positions that predict a labelled token (one to
        the left of it) go through the LM head, so no ``(B, S, vocab)`` logits tensor ever exists.
        Returns ``(lp, row)``: ``(N,)`` log-probabilities and the batch row of each.
        """
        body, head, cap = self._lm_parts()
        hidden = body(
            inputs_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            position_ids=inputs.position_ids,
            use_cache=False,
        ).last_hidden_state  # (B, S, H)
        return self._score_rows(head, cap, hidden[:, :-1], inputs.labels[:, 1:])

    def _score_rows(self, head, cap, hidden: torch.Tensor, target: torch.Tensor):
        """``hidden[b, t]`` predicts ``target[b, t]``; score where ``target != -100`` -> ``(lp, row)``."""
        mask = target != IGNORE_INDEX  # (B, S')
        logits = self._head_logits(head, hidden[mask], cap)  # (N, V)
        lp = -nn.functional.cross_entropy(logits, target[mask], reduction="none")  # (N,)
        return lp, mask.nonzero()[:, 0]

    def loss_counts(self, batch: SpeechBatch) -> dict[str, float]:
        """The denominators of this batch's loss, without running it: answer tokens and valid frames.

        A training step sums them over its micro-batches and processes and hands the totals to
        :meth:`forward` (``totals``), so every layout computes the loss of one batch (Eq. 2 / 4).
        """
        tokens = sum(len(self.prompt.answer_ids(t)) for t in batch.targets or [])
        if batch.feat_lengths is not None:
            frames = int(batch.feat_lengths.sum())
        elif batch.wavs and self.upstream is not None:
            samples = torch.tensor([w.numel() for w in batch.wavs], dtype=torch.long)
            frames = int(self.upstream.output_lengths(samples).sum())
        else:
            frames = 0
        return {"tokens": float(tokens), "frames": float(frames)}

    def forward(
        self,
        batch: SpeechBatch,
        task: str | None = None,
        beta: Mapping[str, float] | None = None,
        totals: Mapping[str, float] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training loss terms for a batch of one task (Eq. 2 and Eq. 4).

        With ``loss_normalization="tokens"`` (default, the paper's weighting) each example ``i``
        contributes ``CE_i + sum_b beta_b KL_b,i``, where ``CE_i`` is the cross-entropy *summed* over
        its answer tokens (Eq. 4) and ``KL_b,i`` branch ``b``'s KL summed over valid frames and latent
        dims (Eq. 2); the batch total is divided by the batch's answer-token count (the gradient
        scale of a per-token mean).  With ``"mean"``: per-token mean CE + ``beta_b`` x per-frame mean KL.
        ``totals`` (:meth:`loss_counts` of a whole optimizer step, see :func:`vib_loss`) replace the
        batch's own denominators: the step's micro-batch losses then add up to one batch's loss.

        Returns ``loss``, ``ce`` (mean CE per answer token), ``kl_content`` / ``kl_descriptor`` (mean
        per-example KL) where computed; with ``"mean"`` also ``kl_<b>_frame`` (mean KL per frame).
        Only trained branches enter ``loss``.
        """
        task = task or batch.task
        if task is None or batch.targets is None:
            raise ValueError("forward needs a task and target texts")
        beta = dict(beta or {})
        emb = self.encode(batch)
        answers = [self.prompt.answer_ids(t) for t in batch.targets]
        inputs = self._llm_inputs(task, emb, answers)
        lp, _ = self._answer_logprobs(inputs)  # (N,) over the batch's answer tokens
        kl = {b: v for b, v in emb.kl.items()}
        return vib_loss(
            -lp.sum(),
            lp.numel(),
            kl,
            emb.kl_frames,
            {b: float(beta.get(b, 0.0)) for b in kl if b in self.trainable_branches},
            self.loss_normalization,
            totals,
        )

    # -- inference ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _eval_mode(self):
        # Switching modes walks every submodule (~9 ms on the tiny models, once per call): skip it
        # when everything is in eval mode already, as in decoding.
        switch = any(m.training for m in self.modules())
        was = self.training
        if switch:
            self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            if switch:
                self.train(was)

    def generate(
        self,
        batch: SpeechBatch,
        task: str,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        **generate_kwargs,
    ) -> list[str]:
        """Greedy / beam-search answers for a batch (left-padded; equal to one-by-one decoding)."""
        from transformers import GenerationConfig

        with self._eval_mode():
            emb = self.encode(batch)
            inputs = self._llm_inputs(task, emb, padding_side="left")
            settings = dict(
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
                temperature=1.0,  # neutral values: the LLM's own sampling defaults must not leak in
                top_p=1.0,
                top_k=50,
                eos_token_id=self.prompt.stop_ids(),
                pad_token_id=self.prompt.pad_id,
            )
            gen = GenerationConfig(**{**settings, **generate_kwargs})
            out = self.llm.generate(
                inputs_embeds=inputs.inputs_embeds,
                attention_mask=inputs.attention_mask,
                generation_config=gen,
            )  # (B, N) new tokens only (no input_ids were given)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _continuation(self, prefix: str, candidate: str) -> tuple[list[int], int]:
        """Token ids of ``prefix + candidate`` and where the candidate's tokens start.

        As lm-evaluation-harness: trailing whitespace of the prefix moves to the candidate, the joint
        string is tokenised once, and the candidate is what follows the prefix's own token count.
        """
        stripped = prefix.rstrip()
        candidate = prefix[len(stripped) :] + candidate
        ctx = self.prompt.encode(stripped) if stripped else []
        whole = self.prompt.encode(stripped + candidate)
        return whole, len(ctx)

    def label_logprobs(
        self,
        batch: SpeechBatch,
        task: str,
        candidates: Sequence[str],
        prefix: str | Sequence[str] = "",
        *,
        length_normalize: bool = False,
        method: str = "cache",
    ) -> torch.Tensor:
        """``(B, K)`` log-probabilities of each candidate continuation after ``prefix`` in the answer.

        E.g. ``candidates = ["angry.", "sad.", ...]`` after ``prefix = "<description> Emotion: "`` gives
        a constrained label posterior (softmax over K) for SER.  ``prefix`` is one string or one per
        example.  ``length_normalize``: the mean log-probability per candidate token instead of the sum.

        ``method="cache"`` (default) runs the shared prefix (prompt, speech, answer prefix) once, keeps
        its KV cache and scores all K continuations from it in one batched pass; ``"full"`` runs the
        whole sequence once per candidate (K passes, the reference the cached path is tested against).
        Both apply the LM head only where a candidate token is predicted.
        """
        prefixes = [prefix] * len(batch) if isinstance(prefix, str) else list(prefix)
        if len(prefixes) != len(batch):
            raise ValueError(f"label_logprobs: {len(prefixes)} prefixes for a batch of {len(batch)}")
        if not candidates:
            raise ValueError("label_logprobs: no candidates")
        if method not in ("cache", "full"):
            raise OptionError(f"label_logprobs: method {method!r}: use 'cache' or 'full'")
        seqs = [[self._continuation(p, c) for c in candidates] for p in prefixes]  # [B][K] (ids, start)
        with self._eval_mode():
            emb = self.encode(batch)
            if method == "full":
                scores = self._label_scores_full(task, emb, seqs)
            else:
                scores = self._label_scores_cached(task, emb, seqs)
        if length_normalize:
            counts = torch.tensor([[max(len(w) - n, 1) for w, n in row] for row in seqs], dtype=scores.dtype)
            scores = scores / counts
        return scores

    def _label_scores_full(self, task: str, emb: SpeechEmbeddings, seqs) -> torch.Tensor:
        """K teacher-forced passes over prompt + prefix + candidate k (right-padded)."""
        b, k_ = len(seqs), len(seqs[0])
        scores = torch.zeros(b, k_)
        for k in range(k_):
            row_seqs = [row[k] for row in seqs]
            inputs = self._llm_inputs(task, emb, [w for w, _ in row_seqs], [n for _, n in row_seqs])
            lp, rows = self._answer_logprobs(inputs)
            scores[:, k] = torch.zeros(b, device=lp.device).index_add_(0, rows, lp).cpu()
        return scores

    def _label_scores_cached(self, task: str, emb: SpeechEmbeddings, seqs) -> torch.Tensor:
        """One pass over the shared prefixes (left-padded, KV cache kept), one over the B x K continuations.

        Per example ``i`` the cache holds the prompt and the answer tokens that all K candidate
        sequences share before the first scored token (``c_i``); continuation ``(i, k)`` is the rest of
        its sequence, appended at positions ``p_i, p_i + 1, ...`` behind the cache.  The prefix's last
        hidden state predicts each continuation's first token.
        """
        body, head, cap = self._lm_parts()
        b, k_ = len(seqs), len(seqs[0])
        # c_i: answer tokens all K sequences share, never past the first scored token of any of them
        shared = [min(min(n for _, n in row), _common_prefix_len([w for w, _ in row])) for row in seqs]
        pre = self._llm_inputs(
            task, emb, [row[0][0][:c] for row, c in zip(seqs, shared, strict=True)], padding_side="left"
        )
        key = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
        out = body(
            inputs_embeds=pre.inputs_embeds,
            attention_mask=pre.attention_mask,
            position_ids=pre.position_ids,
            use_cache=True,
        )  # (B, P, H)
        cache = getattr(out, key)
        cache.batch_repeat_interleave(k_)  # (B * K) rows, example i's K rows in a row
        last = out.last_hidden_state[:, -1:].repeat_interleave(k_, dim=0)  # (B K, 1, H)
        rest = [
            (w[c:], n - c, len(w) - c) for row, c in zip(seqs, shared, strict=True) for w, n in row
        ]  # (ids, start, end)
        width = max(1, max(len(ids) for ids, _, _ in rest))
        dev = pre.attention_mask.device
        ids = torch.full((b * k_, width), self.prompt.pad_id, dtype=torch.long)
        cont_mask = torch.zeros((b * k_, width), dtype=torch.long)
        # target[:, t] is predicted by column t of [prefix's last hidden | continuation hidden]
        target = torch.full((b * k_, width + 1), IGNORE_INDEX, dtype=torch.long)
        for r, (tok, start, end) in enumerate(rest):
            ids[r, : len(tok)] = torch.tensor(tok, dtype=torch.long)
            cont_mask[r, : len(tok)] = 1
            target[r, start:end] = torch.tensor(tok[start:end], dtype=torch.long)
        ids, cont_mask, target = ids.to(dev), cont_mask.to(dev), target.to(dev)
        valid = pre.attention_mask.sum(-1).repeat_interleave(k_)  # (B K,) prefix tokens per row
        positions = valid[:, None] + torch.arange(width, device=dev)[None, :]  # (B K, C)
        attention = torch.cat([pre.attention_mask.repeat_interleave(k_, dim=0), cont_mask], dim=1)
        hidden = body(
            inputs_embeds=self.llm.get_input_embeddings()(ids),
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            **{key: cache},
        ).last_hidden_state  # (B K, C, H)
        hidden = torch.cat([last.to(hidden.dtype), hidden], dim=1)  # (B K, C + 1, H)
        lp, rows = self._score_rows(head, cap, hidden, target)
        flat = torch.zeros(b * k_, device=lp.device).index_add_(0, rows, lp)
        return flat.view(b, k_).cpu()

    # -- checkpoints --------------------------------------------------------------------------
    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Every module training may change: both branches and the LLM's LoRA (or full) weights.

        Never the frozen base weights (upstream, LLM base).
        """
        out = {}
        for b in BRANCHES:
            out.update({f"{b}.{k}": v for k, v in self.branch(b).state_dict().items()})
        out.update({f"llm.{k}": v for k, v in trainable_llm_state(self.llm, self.cfg.llm_mode).items()})
        return {k: v.detach().to("cpu").contiguous() for k, v in out.items()}

    def load_trained_state(self, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load what :meth:`trained_state_dict` saved; every key must fit this model."""
        groups: dict[str, dict[str, torch.Tensor]] = {"content": {}, "descriptor": {}, "llm": {}}
        for k, v in state.items():
            head, _, rest = k.partition(".")
            if head not in groups:
                raise CheckpointError(f"{source}: unexpected weight {k!r}")
            groups[head][rest] = v
        for b in BRANCHES:
            try:
                self.branch(b).load_state_dict(groups[b], strict=True)
            except RuntimeError as e:
                raise CheckpointError(f"{source}: {b} branch does not fit this model config: {e}") from None
        own = self.llm.state_dict()
        for k, v in groups["llm"].items():
            if k not in own:
                raise CheckpointError(
                    f"{source}: LLM weight {k!r} is not in this model (llm_mode {self.cfg.llm_mode!r}, "
                    f"LoRA targets {self.cfg.lora.target_modules})"
                )
            if own[k].shape != v.shape:
                raise CheckpointError(
                    f"{source}: LLM weight {k!r} has shape {tuple(v.shape)}, model has {tuple(own[k].shape)}"
                )
        expected = trainable_llm_state(self.llm, self.cfg.llm_mode).keys()
        missing = [k for k in expected if k not in groups["llm"]]
        if groups["llm"] and missing:
            raise CheckpointError(
                f"{source}: {len(missing)} trained LLM weights missing, e.g. {missing[0]!r}"
            )
        self.llm.load_state_dict(groups["llm"], strict=False)


# ----------------------------------------------------------------------------- building


def resolve_feature_shape(cfg: Config, meta: Mapping | None) -> Config:
    """Fill ``model.num_layers`` / ``feature_dim`` / ``upstream_layers`` from a dump's ``meta.json``.

    Values already in the config (e.g. from a stage-1 checkpoint) must agree with the dump.
    """
    if meta is None:
        return cfg
    m = cfg.model
    num_layers, dim = int(meta["num_layers"]), int(meta["hidden_size"])
    layers = list(meta.get("layers") or range(num_layers))
    identity = meta.get("identity", {})
    total = int(meta.get("num_hidden_states") or identity.get("num_hidden_states") or num_layers)
    up_layers = None if layers == list(range(total)) else layers
    for key, have, new in (("num_layers", m.num_layers, num_layers), ("feature_dim", m.feature_dim, dim)):
        if have is not None and have != new:
            raise ConfigError(f"model.{key} is {have} but the features have {new}")
    if m.upstream_layers is not None and up_layers is not None and list(m.upstream_layers) != up_layers:
        raise ConfigError(
            f"model.upstream_layers is {m.upstream_layers} but the dump holds layers {up_layers}"
        )
    model = replace(m, num_layers=num_layers, feature_dim=dim, upstream_layers=up_layers or m.upstream_layers)
    return replace(cfg, model=model)


def load_model_upstream(cfg: ModelConfig, device: torch.device | str):
    from sedtk.features.upstream import load_upstream
    from sedtk.utils.device import auto_dtype

    layers = cfg.upstream_layers if cfg.upstream_layers is not None else "all"
    dtype = torch_dtype(auto_dtype(cfg.upstream_dtype, device, cuda="bfloat16"))  # auto: bf16 on CUDA
    return load_upstream(cfg.upstream, device=device, dtype=dtype, layers=layers)


def upstream_and_shape(
    cfg: Config, device: torch.device | str, feature_meta: Mapping | None, online: bool
) -> tuple[nn.Module | None, Config]:
    """The online upstream (or None) and the config with the feature shape filled in.

    Online, the upstream is loaded and defines the shape; else a dump's ``meta.json`` does.
    """
    if not online:
        return None, resolve_feature_shape(cfg, feature_meta)
    upstream = load_model_upstream(cfg.model, device)
    meta = {
        "num_layers": upstream.num_layers,
        "hidden_size": upstream.hidden_size,
        "layers": list(upstream.layers),
        "num_hidden_states": upstream.num_hidden_states,
    }
    return upstream, resolve_feature_shape(cfg, meta)


def build_model(
    cfg: Config,
    device: torch.device | str = "cpu",
    feature_meta: Mapping | None = None,
    online: bool | None = None,
    llm: tuple[nn.Module, object] | None = None,
) -> tuple[SEDModel, Config]:
    """Build an :class:`SEDModel` from a config (loading the LLM and, online, the upstream).

    ``feature_meta`` is a dump's ``meta.json`` (features read from disk); with ``online`` (default
    ``cfg.data.online_features``) the upstream is loaded and defines the feature shape.  ``llm``: an
    ``(LLM, tokenizer)`` pair already made ready by :func:`~sedtk.models.llm.prepare_llm` in place of
    loading ``model.llm`` (``bench/gpu`` builds the real shape in memory).  Returns the model and the
    config with ``model.num_layers`` / ``feature_dim`` filled in.
    """
    online = cfg.data.online_features if online is None else online
    upstream, cfg = upstream_and_shape(cfg, device, feature_meta, online)
    m = cfg.model
    llm, tokenizer = llm or load_llm(
        m.llm,
        mode=m.llm_mode,
        dtype=m.dtype,
        lora=m.lora,
        gradient_checkpointing=m.gradient_checkpointing,
        attn_implementation=m.attn_implementation,
        quant=m.llm_quant,
    )
    model = SEDModel(
        m, cfg.prompt, llm, tokenizer, upstream=upstream, loss_normalization=cfg.train.loss_normalization
    )
    model.configure_training((), False, cfg.train.descriptor_input)
    return model.to(device), cfg
