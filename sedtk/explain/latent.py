"""What each branch learned: layer weights and latent-unit statistics (paper Sec. 3.2, Eq. 2).

Only the two branch blocks of a checkpoint are rebuilt here (weighted sum + encoder + Gaussian
posterior); the LLM is never loaded, so this is cheap even for an 8B-parameter model.  An SSL SER
baseline (``model.kind: ssl_ser``, Tab. 2 Sys. 1-3) has no branch blocks: its two weighted sums (the
emotion head's and the CTC head's) are rebuilt instead, and only their layer weights are reported.

Definitions used in the report:

* **Layer weights** -- ``softmax(w)`` of each branch's weighted sum over the SSL hidden states
  (hidden state 0 is the CNN / embedding output, ``i`` the output of Transformer layer ``i``).
* **Per-dimension KL** -- ``KL(N(mu_d, sigma_d^2) || N(0, 1)) = (mu_d^2 + sigma_d^2 - 1) / 2 - log sigma_d``,
  averaged over every valid frame of the data dir (the per-frame total is the ``kl`` that the VIB
  loss weights by beta).
* **Active unit** (Burda et al., 2016, "Importance Weighted Autoencoders", Sec. 5.2) -- latent
  dimension ``d`` is active when ``A_d = Var_x[ E_{q(z|x)}[z_d] ] = Var_x[ mu_d(x) ] > 0.01``.  Here
  ``x`` ranges over every valid *frame* of the data dir (``z`` is a per-frame latent), and the
  variance is the population variance over those frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sedtk.errors import CheckpointError

ACTIVE_THRESHOLD = 0.01
BRANCHES = ("content", "descriptor")
#: The weighted sums of an SSL SER baseline (``sedtk.models.ssl_ser``), by head.
SSL_HEADS = ("emotion", "ctc")


@dataclass
class BranchBlocks:
    """The two blocks of a checkpoint, their config, and the hidden-state index of each mixed layer."""

    blocks: dict  # branch -> DisentanglementBlock | PlainBlock (ssl_ser: head -> its WeightedSum)
    config: object
    layer_ids: dict[str, list[int]]  # branch -> hidden-state index of each weight
    checkpoint: Path
    kind: str = "llm"  # model.kind

    @property
    def has_latents(self) -> bool:
        """Whether the blocks have Gaussian latents (the paper's model with disentanglement)."""
        return self.kind == "llm" and bool(self.config.model.feature_disentanglement)


def load_blocks(model: str | os.PathLike, checkpoint: str | None = None) -> BranchBlocks:
    """Rebuild both branch blocks from a checkpoint's config and weights (no LLM, no upstream)."""
    from sedtk.config import config_from_dict
    from sedtk.models.checkpoint import read_config_dict, read_weights, require_checkpoint
    from sedtk.models.disentangle import DisentanglementBlock, PlainBlock

    ckpt = require_checkpoint(model, checkpoint)
    cfg = config_from_dict(read_config_dict(ckpt))
    m = cfg.model
    if m.num_layers is None or m.feature_dim is None:
        raise CheckpointError(f"{ckpt}: the saved config lacks model.num_layers / feature_dim")
    weights = read_weights(ckpt)
    supplied = list(m.upstream_layers) if m.upstream_layers is not None else list(range(m.num_layers))
    if m.kind == "ssl_ser":
        return _load_ssl_sums(ckpt, cfg, weights, supplied)
    if m.kind != "llm":
        raise CheckpointError(f"{ckpt}: model.kind {m.kind!r} is not one sedtk explain knows (llm, ssl_ser)")
    blocks, layer_ids = {}, {}
    for b in BRANCHES:
        if m.feature_disentanglement:
            block = DisentanglementBlock(
                m.num_layers,
                m.feature_dim,
                m.encoder_dim,
                m.latent_dim,
                m.sigma_floor,
                m.layers,
                m.layer_norm,
            )
        else:
            block = PlainBlock(m.num_layers, m.feature_dim, m.layers, m.layer_norm)
        prefix = f"{b}.block."
        state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        try:
            block.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{ckpt}: the {b} block does not fit its config: {e}") from None
        blocks[b] = block.eval()
        sel = block.weighted_sum.selected
        layer_ids[b] = [supplied[i] for i in sel] if sel is not None else supplied
    return BranchBlocks(blocks, cfg, layer_ids, ckpt)


def _load_ssl_sums(ckpt: Path, cfg, weights: dict, supplied: list[int]) -> BranchBlocks:
    """The SSL SER baseline's two weighted sums (``emotion.0.*``, ``ctc.0.*`` of its checkpoint)."""
    from sedtk.models.weighted_sum import WeightedSum

    m = cfg.model
    blocks, layer_ids = {}, {}
    for head in SSL_HEADS:
        ws = WeightedSum(m.num_layers, m.layers, m.layer_norm)
        prefix = f"{head}.0."  # heads() holds ModuleList([weighted sum, ...])
        state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        try:
            ws.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(
                f"{ckpt}: the {head} head's weighted sum does not fit its config: {e}"
            ) from None
        blocks[head] = ws.eval()
        layer_ids[head] = [supplied[i] for i in ws.selected] if ws.selected is not None else supplied
    return BranchBlocks(blocks, cfg, layer_ids, ckpt, kind="ssl_ser")


def layer_weights(bb: BranchBlocks) -> dict[str, list[tuple[int, float]]]:
    """branch -> ``[(hidden-state index, softmax weight), ...]``."""
    out = {}
    for b, block in bb.blocks.items():
        ws = getattr(block, "weighted_sum", block)  # a branch block, or an ssl_ser head's WeightedSum
        w = ws.normalized_weights().tolist()
        out[b] = list(zip(bb.layer_ids[b], w, strict=True))
    return out


class LatentStats:
    """Streaming per-dimension statistics of ``mu`` and the KL over frames (float64 sums, O(Z) memory)."""

    def __init__(self, dim: int):
        import torch

        self.dim = dim
        self.frames = 0
        self.utterances = 0
        self._mu = torch.zeros(dim, dtype=torch.float64)
        self._mu2 = torch.zeros(dim, dtype=torch.float64)
        self._kl = torch.zeros(dim, dtype=torch.float64)

    def add(self, mu, sigma, mask) -> None:
        """``mu``/``sigma``: ``(B, T, Z)``; ``mask``: ``(B, T)`` valid frames."""
        import torch

        m = mask.reshape(-1)
        mu = mu.reshape(-1, mu.shape[-1])[m].double()  # (N, Z) valid frames only
        sigma = sigma.reshape(-1, sigma.shape[-1])[m].double()
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0) - torch.log(sigma)  # (N, Z)
        self._mu += mu.sum(0)
        self._mu2 += mu.pow(2).sum(0)
        self._kl += kl.sum(0)
        self.frames += int(m.sum())
        self.utterances += int(mask.any(-1).sum())

    def mean_kl(self) -> list[float]:
        return (self._kl / max(self.frames, 1)).tolist()

    def var_mu(self) -> list[float]:
        n = max(self.frames, 1)
        mean = self._mu / n
        return (self._mu2 / n - mean.pow(2)).clamp(min=0.0).tolist()

    def active(self, threshold: float = ACTIVE_THRESHOLD) -> list[bool]:
        return [v > threshold for v in self.var_mu()]


def new_latent_stats(bb: BranchBlocks) -> dict[str, LatentStats]:
    """Empty statistics for each branch with a Gaussian latent (none for a plain or ssl_ser model)."""
    from sedtk.models.disentangle import DisentanglementBlock

    return {
        b: LatentStats(block.latent_dim)
        for b, block in bb.blocks.items()
        if isinstance(block, DisentanglementBlock)
    }


def add_latent_batch(bb: BranchBlocks, stats: dict[str, LatentStats], hidden, lengths) -> None:
    """Add one batch ``hidden (B, L, T, D)``, ``lengths (B,)`` to ``stats`` (``z = mu``, eval mode)."""
    import torch

    from sedtk.models.disentangle import frame_mask

    with torch.no_grad():
        mask = frame_mask(lengths, hidden.shape[2])  # (B, T)
        for b in stats:
            out = bb.blocks[b](hidden, lengths)
            stats[b].add(out.mu, out.sigma, mask)
