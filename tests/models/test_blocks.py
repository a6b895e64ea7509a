"""Weighted sum, disentanglement (VIB) blocks and adapters: paper Sec. 3.2-3.3, Eq. 2-3."""

from __future__ import annotations

import pytest
import torch

from sedtk.models.adapter import Adapter, DownSample, downsample_lengths
from sedtk.models.disentangle import DisentanglementBlock, PlainBlock, gaussian_kl
from sedtk.models.weighted_sum import WeightedSum


def test_weighted_sum_starts_as_layer_mean_and_selects_layers():
    x = torch.randn(2, 4, 5, 3)  # (B, L, T, D)
    ws = WeightedSum(4)
    assert torch.equal(ws.weights.detach(), torch.zeros(4))
    assert torch.allclose(ws(x), x.mean(1), atol=1e-6)
    sel = WeightedSum(4, layers=[1, -1])
    assert torch.allclose(sel(x), (x[:, 1] + x[:, 3]) / 2, atol=1e-6)
    with torch.no_grad():
        sel.weights.copy_(torch.tensor([10.0, -10.0]))
    assert torch.allclose(sel(x), x[:, 1], atol=1e-4)
    with pytest.raises(ValueError, match="L=4"):
        ws(torch.randn(2, 3, 5, 3))
    with pytest.raises(ValueError, match="invalid"):
        WeightedSum(4, layers=[4])


def test_disentanglement_block_shapes_sampling_and_masked_kl():
    torch.manual_seed(0)
    blk = DisentanglementBlock(num_layers=3, input_dim=6, hidden_dim=8, latent_dim=4)
    # Figure 1: Linear-GELU-Linear-GELU, then one Linear giving [mu | pre-softplus sigma]
    kinds = [type(m).__name__ for m in blk.encoder] + [type(blk.posterior).__name__]
    assert kinds == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert blk.posterior.out_features == 8
    x = torch.randn(2, 3, 7, 6)
    lengths = torch.tensor([7, 4])
    blk.eval()
    out = blk(x, lengths)
    assert out.z.shape == (2, 7, 4)
    assert torch.equal(out.z[0], out.mu[0])  # eval: z = mu
    assert torch.all(out.z[1, 4:] == 0)  # padded frames zeroed
    assert torch.all(out.sigma > 0)
    # KL over valid frames only: padding content must not change it
    x2 = x.clone()
    x2[1, :, 4:] = 100.0
    assert torch.allclose(blk(x2, lengths).kl, out.kl)
    mask = torch.arange(7)[None] < lengths[:, None]
    mu, sig = out.mu[mask], out.sigma[mask]
    manual = (0.5 * (mu**2 + sig**2 - 1 - 2 * sig.log()).sum(-1)).mean()
    assert torch.allclose(out.kl, manual, atol=1e-6)
    blk.train()
    z1, z2 = blk(x, lengths).z, blk(x, lengths).z
    assert not torch.allclose(z1, z2)  # training samples z = mu + sigma * eps


def test_gaussian_kl_is_zero_for_standard_normal():
    mu, sigma = torch.zeros(1, 3, 5), torch.ones(1, 3, 5)
    assert float(gaussian_kl(mu, sigma, torch.ones(1, 3, dtype=torch.bool))) == pytest.approx(0.0, abs=1e-7)


def test_plain_block_has_no_vib():
    x = torch.randn(1, 2, 5, 3)
    out = PlainBlock(2, 3)(x, torch.tensor([5]))
    assert out.kl is None and torch.allclose(out.z, x.mean(1), atol=1e-6)


def test_downsample_stacks_k_frames_and_counts_real_frames():
    x = torch.arange(2 * 7 * 2, dtype=torch.float32).reshape(2, 7, 2)  # (B, T, D)
    y, n = DownSample(3)(x, torch.tensor([7, 4]))
    assert y.shape == (2, 3, 6)
    assert torch.equal(y[0, 0], x[0, :3].reshape(-1))
    assert torch.equal(y[0, 2], torch.cat([x[0, 6], torch.zeros(4)]))  # last group zero-padded
    assert n.tolist() == [3, 2]  # ceil(len / k)
    assert downsample_lengths(torch.tensor([5, 6, 1]), 5).tolist() == [1, 2, 1]


def test_adapter_output_does_not_depend_on_batch_padding():
    torch.manual_seed(0)
    ad = Adapter(input_dim=4, hidden_dim=8, output_dim=6, k=5)
    z = torch.randn(1, 12, 4)
    single, n1 = ad(z, torch.tensor([12]))
    padded = torch.cat([z, torch.zeros(1, 9, 4)], dim=1)  # as a padded batch member (z is zero past length)
    batched, n2 = ad(padded, torch.tensor([12]))
    assert n1.tolist() == n2.tolist() == [3]
    assert torch.allclose(single, batched[:, :3], atol=1e-6)
    kinds = [type(m).__name__ for m in ad.proj]
    assert kinds == ["Linear", "ReLU", "Linear"]
