"""The frozen SSL upstream: every hidden state of a speech model, per frame (paper Sec. 2.1).

The paper feeds *all* hidden layers of a frozen HuBERT (``facebook/hubert-large-ls960-ft``) to the two
disentanglement blocks, each of which takes its own softmax-weighted sum over layers (Eq. 2).  This
module produces exactly that input, following the s3prl upstream contract::

    upstream = load_upstream("facebook/hubert-large-ls960-ft", device="cuda", dtype=torch.float16)
    hidden, lengths = upstream([wav_1, wav_2])   # (B, L, T', D), (B,)

``L`` counts the CNN/embedding output plus every Transformer layer (25 for HuBERT-large) unless a
subset is selected with ``layers``.  Any Hugging Face HuBERT, WavLM or wav2vec 2.0 checkpoint (hub id
or local folder) works; the special name ``fbank`` gives 80-dim Kaldi log-mel filterbanks at 100 Hz
as a weight-free baseline with a single "layer".

Padding.  Batched inputs are normalised and padded by the checkpoint's feature extractor.  Models
whose CNN normalises per frame (``feat_extract_norm == "layer"``, e.g. HuBERT-large, WavLM-large,
wav2vec2-large-lv60) and whose feature extractor returns an attention mask are run as padded
batches with that mask; their valid frames equal those of a one-by-one forward (up to float
rounding).  Models with a GroupNorm CNN (``"group"``, e.g. hubert-base, wav2vec2-base) normalise
over *time*, padding included, so Hugging Face's advice (pad with zeros, no mask) changes the valid
frames with the batch's longest utterance.  Features must not depend on batch composition, so such
models are run **one utterance at a time** (``batch_exact`` is ``False``; the padded output is the
same, only slower).  Frames past each utterance's length are zero.

Padding budget.  The CNN works at the sample rate, so a padded sample costs as much as a real one
and the CNN is most of a small upstream's time (87 % for the tiny test HuBERT on CPU).  A batch is
therefore run as sub-batches of similar lengths, each padding at most ``max_padding`` times its real
samples (:func:`length_groups`; default 1.15, ``inf``: one padded batch).  Utterances of similar
length still run together (what a GPU needs); 32 utterances of 1-4 s padded to the longest cost
1.6x the one-by-one CPU time before, 16 of them 1.3x.

The upstream is frozen: parameters never require grad, the wrapped model stays in eval mode even
when a parent module calls ``.train()`` (HF SSL models apply dropout, LayerDrop and SpecAugment-style
masking in train mode), and the forward runs under ``torch.no_grad``, so it can be called inside a
training step as well as by ``sedtk feats dump``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from sedtk.errors import AudioError, CheckpointError, OptionError
from sedtk.utils.hf import load_checked

log = logging.getLogger(__name__)

#: padded samples / real samples allowed in one forward of the SSL model (see "Padding budget")
MAX_PADDING = 1.15

SAMPLE_RATE = 16000
FBANK = "fbank"
#: fbank without the per-utterance mean subtraction: keeps absolute level (loudness) audible.
FBANK_RAW = "fbank-raw"


def parse_layers(spec: str | Sequence[int] | None, total: int) -> list[int]:
    """Hidden-state indices from ``"all"``/``None``, ``"0,3,5"`` or a list (negative counts from the end)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(total))
    if isinstance(spec, str):
        try:
            items = [int(x) for x in spec.split(",") if x.strip()]
        except ValueError:
            raise OptionError(
                f"layers {spec!r}: expected 'all' or comma-separated integers like '0,3,5'"
            ) from None
    else:
        items = [int(x) for x in spec]
    if not items:
        raise OptionError(f"layers {spec!r}: no layer selected")
    out = []
    for i in items:
        j = i + total if i < 0 else i
        if not 0 <= j < total:
            raise OptionError(
                f"layer {i} out of range: the upstream has {total} hidden states (0..{total - 1})"
            )
        if j in out:
            raise OptionError(f"layers {spec!r}: layer {j} selected twice")
        out.append(j)
    return out


class Upstream(nn.Module):
    """A frozen feature extractor mapping a list of 16 kHz waveforms to per-frame hidden states.

    Attributes: ``name`` (hub id, path or ``fbank``), ``layers`` (selected hidden-state indices),
    ``num_layers`` (``L`` of the output, i.e. ``len(layers)``), ``num_hidden_states`` (available),
    ``hidden_size`` (``D``), ``frame_rate`` (Hz).
    """

    name: str
    layers: list[int]
    num_hidden_states: int
    hidden_size: int
    frame_rate: float
    sample_rate: int = SAMPLE_RATE
    #: Minimum number of samples that give one frame.
    min_samples: int

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def output_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frame counts for waveforms of ``num_samples`` samples."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What identifies these features (written into a dump's ``meta.json``)."""
        return {
            "upstream": self.name,
            "layers": list(self.layers),
            "num_hidden_states": self.num_hidden_states,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "frame_rate": self.frame_rate,
        }

    def train(self, mode: bool = True) -> Upstream:
        """Frozen: always stays in eval mode whatever a parent module asks."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self._device_probe.device

    def _check(self, wavs: Sequence[torch.Tensor]) -> None:
        if len(wavs) == 0:
            raise ValueError("upstream: empty batch")
        for i, w in enumerate(wavs):
            if w.dim() != 1:
                raise ValueError(
                    f"upstream: waveform {i} has shape {tuple(w.shape)}; expected (T,) mono samples"
                )
            if w.numel() < self.min_samples:
                raise AudioError(
                    f"upstream: waveform {i} has {w.numel()} samples, fewer than the {self.min_samples} "
                    f"({self.min_samples / self.sample_rate * 1000:.0f} ms) that give one frame of "
                    f"{self.name}"
                )


def length_groups(lengths: Sequence[int], max_padding: float = MAX_PADDING) -> list[list[int]]:
    """Indices grouped longest first so that each group, padded to its longest, holds at most
    ``max_padding`` times its real samples (a group of one is always allowed)."""
    groups: list[list[int]] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
        g = groups[-1] if groups else None
        if g is not None and (len(g) + 1) * lengths[g[0]] <= max_padding * (total + lengths[i]):
            g.append(i)
            total += lengths[i]
        else:
            groups.append([i])
            total = lengths[i]
    return groups


def _freeze(module: nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


class HFUpstream(Upstream):
    """Any Hugging Face SSL speech model loaded with ``AutoModel`` (HuBERT, WavLM, wav2vec 2.0, ...)."""

    def __init__(self, name: str, model: nn.Module, feature_extractor, layers=None):
        super().__init__()
        self.name = name
        self.model = model
        self.feature_extractor = feature_extractor
        _freeze(self.model)
        config = model.config
        self.num_hidden_states = config.num_hidden_layers + 1
        self.layers = parse_layers(layers, self.num_hidden_states)
        self.hidden_size = config.hidden_size
        self.use_mask = bool(getattr(feature_extractor, "return_attention_mask", False))
        #: Padded batches give the same valid frames as single utterances (see the module docstring).
        self.batch_exact = self.use_mask and getattr(config, "feat_extract_norm", None) == "layer"
        hop = 1
        for s in config.conv_stride:
            hop *= s
        self.frame_rate = self.sample_rate / hop
        self.min_samples = _min_input_length(self.model)
        #: padding budget of one forward (module docstring); ``inf`` runs the batch padded as a whole
        self.max_padding = MAX_PADDING
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def output_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        return self.model._get_feat_extract_output_lengths(num_samples).long()

    def describe(self) -> dict:
        d = super().describe()
        d["config"] = {
            k: v for k, v in self.model.config.to_diff_dict().items() if k not in ("dtype", "torch_dtype")
        }
        d["batch_exact"] = self.batch_exact
        return d

    @torch.no_grad()
    def forward(self, wavs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``wavs``: list of (T_i,) 16 kHz waveforms -> hidden (B, L, T', D), lengths (B,)."""
        self._check(wavs)
        if not self.batch_exact:
            groups = [[i] for i in range(len(wavs))]
        else:
            groups = length_groups([w.numel() for w in wavs], self.max_padding)
        if len(groups) == 1:
            return self._forward_batch(wavs)
        outs = [self._forward_batch([wavs[i] for i in g]) for g in groups]
        lengths = torch.zeros(len(wavs), dtype=torch.long, device=outs[0][1].device)
        for g, (_, n) in zip(groups, outs, strict=True):
            lengths[g] = n
        hidden = outs[0][0].new_zeros(len(wavs), self.num_layers, int(lengths.max()), self.hidden_size)
        for g, (h, n) in zip(groups, outs, strict=True):
            for row, b in enumerate(g):
                hidden[b, :, : int(n[row])] = h[row, :, : int(n[row])]
        return hidden, lengths

    def _forward_batch(self, wavs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        device, dtype = self.device, next(self.model.parameters()).dtype
        inputs = self.feature_extractor(
            [w.detach().float().cpu().numpy() for w in wavs],
            sampling_rate=self.sample_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        values = inputs["input_values"].to(device=device, dtype=dtype)  # (B, T)
        mask = inputs["attention_mask"].to(device)  # (B, T)
        out = self.model(values, attention_mask=mask if self.use_mask else None, output_hidden_states=True)
        lengths = self.output_lengths(mask.sum(-1))  # (B,)
        hidden = torch.stack([out.hidden_states[i] for i in self.layers], dim=1)  # (B, L, T', D)
        pad = torch.arange(hidden.shape[2], device=device)[None, :] >= lengths[:, None]  # (B, T')
        hidden.masked_fill_(pad[:, None, :, None], 0.0)  # frames past each length are zero (in place)
        return hidden, lengths


def _min_input_length(model: nn.Module) -> int:
    """The fewest samples for which the model's CNN yields one frame."""
    n = 1
    for k, s in reversed(list(zip(model.config.conv_kernel, model.config.conv_stride, strict=True))):
        n = (n - 1) * s + k
    return n


class FbankUpstream(Upstream):
    """Kaldi-style 80-dim log-mel filterbanks (25 ms window, 10 ms hop: 100 Hz), no weights, one "layer".

    ``cmn`` subtracts the per-utterance mean of each bin (cepstral mean normalisation).
    """

    WINDOW, HOP = 400, 160  # samples at 16 kHz

    def __init__(self, num_mel_bins: int = 80, cmn: bool = True, layers=None):
        super().__init__()
        self.name = FBANK if cmn else FBANK_RAW
        self.num_mel_bins = num_mel_bins
        self.cmn = cmn
        self.num_hidden_states = 1
        self.layers = parse_layers(layers, 1)
        self.hidden_size = num_mel_bins
        self.frame_rate = self.sample_rate / self.HOP
        self.min_samples = self.WINDOW
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def output_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        return torch.div(num_samples - self.WINDOW, self.HOP, rounding_mode="floor").long() + 1  # snip_edges

    def describe(self) -> dict:
        return {**super().describe(), "config": {"num_mel_bins": self.num_mel_bins, "cmn": self.cmn}}

    @torch.no_grad()
    def forward(self, wavs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        import torchaudio.compliance.kaldi as kaldi

        self._check(wavs)
        feats = []
        for w in wavs:
            f = kaldi.fbank(
                w.detach().float().cpu()[None] * 32768.0,  # Kaldi works on 16-bit sample values
                num_mel_bins=self.num_mel_bins,
                frame_length=25.0,
                frame_shift=10.0,
                dither=0.0,
                energy_floor=0.0,
                sample_frequency=self.sample_rate,
            )  # (T', 80)
            feats.append(f - f.mean(0, keepdim=True) if self.cmn else f)
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
        hidden = torch.zeros(len(feats), 1, int(lengths.max()), self.hidden_size)  # (B, 1, T', 80)
        for b, f in enumerate(feats):
            hidden[b, 0, : f.shape[0]] = f
        return hidden.to(self.device), lengths.to(self.device)


def _default_feature_extractor(model_dir: str, config):
    """A feature extractor for checkpoints published without ``preprocessor_config.json``.

    Follows fairseq's convention: large (layer-norm CNN) models were trained on normalised audio
    with padding masks; base (group-norm) models on raw audio without masks.
    """
    from transformers import Wav2Vec2FeatureExtractor

    layer = getattr(config, "feat_extract_norm", None) == "layer"
    log.warning(
        "%s has no preprocessor_config.json; using do_normalize=%s return_attention_mask=%s",
        model_dir,
        layer,
        layer,
    )
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=layer,
        return_attention_mask=layer,
    )


def _benign_missing(key: str) -> bool:
    """Parameters an SSL checkpoint may lack without harm: the pre-training mask embedding."""
    return key.endswith("masked_spec_embed")


def _task_head(key: str) -> bool:
    """Weights of a task checkpoint the base model does not use (a CTC or classification head, the
    pre-training quantizer); encoder layers beyond the config are not among them."""
    return "layers." not in key


def load_upstream(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    layers: str | Sequence[int] | None = "all",
    cmn: bool = True,
) -> Upstream:
    """Load a frozen upstream: ``fbank`` or any HF SSL checkpoint (hub id or local folder).

    ``dtype`` is the weights' dtype (e.g. ``torch.float16`` on GPU; default float32); ``layers``
    selects hidden states (``"all"``, ``"0,3,5"`` or a list); ``cmn`` only applies to ``fbank``.
    ``fbank-raw`` is ``fbank`` without mean normalisation, so the absolute level (loudness) stays.
    """
    name = str(name_or_path)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if name in (FBANK, FBANK_RAW):
        up: Upstream = FbankUpstream(cmn=cmn and name == FBANK, layers=layers)
        return up.to(device)
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    from sedtk.utils.hub import hub_errors

    if Path(name).exists() and not (Path(name) / "config.json").is_file():
        raise FileNotFoundError(f"{name}: not a Hugging Face checkpoint folder (no config.json)")
    with hub_errors(name, "upstream"):  # gated, missing, not cached offline: one clear line
        config = AutoConfig.from_pretrained(name, trust_remote_code=False)
    if not hasattr(config, "conv_stride"):
        raise CheckpointError(
            f"{name}: model type {config.model_type!r} is not a wav2vec2-style SSL speech model "
            "(HuBERT, WavLM, wav2vec 2.0, data2vec-audio), 'fbank' or 'fbank-raw'"
        )
    try:
        fe = AutoFeatureExtractor.from_pretrained(name, trust_remote_code=False)
    except (OSError, ValueError):
        fe = _default_feature_extractor(name, config)
    with hub_errors(name, "upstream"):
        # a *ForCTC checkpoint (hubert-large-ls960-ft) loads as its encoder: the CTC head is not read
        # (load_checked: a config that does not fit the weights is one error, the head is accepted)
        model, _ = load_checked(
            AutoModel, name, "upstream", ok_missing=_benign_missing, ok_unexpected=_task_head,
            trust_remote_code=False, dtype=dtype or torch.float32,
        )  # fmt: skip
    up = HFUpstream(name, model, fe, layers=layers)
    return up.to(device)
