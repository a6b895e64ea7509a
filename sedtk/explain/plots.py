"""PNG figures of ``sedtk explain`` (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from sedtk.explain.latent import ACTIVE_THRESHOLD, LatentStats


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    import os

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def plot_layer_weights(weights: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """One bar chart per branch: softmax weight of each SSL hidden state, with the uniform 1/L line."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(weights), figsize=(5 * len(weights), 3.2), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, (branch, lw) in zip(axes[0], weights.items(), strict=True):
        idx = [i for i, _ in lw]
        w = [v for _, v in lw]
        ax.bar(range(len(idx)), w, color="tab:blue" if branch == "content" else "tab:orange")
        ax.axhline(1.0 / len(w), color="gray", linestyle="--", linewidth=1, label="uniform 1/L")
        ax.set_xticks(range(len(idx)))
        ax.set_xticklabels([str(i) for i in idx], fontsize=7 if len(idx) > 13 else 9)
        ax.set_xlabel("SSL hidden state (0 = CNN output)")
        ax.set_title(f"{branch} branch")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("softmax layer weight")
    fig.suptitle("Weighted-sum layer weights (Sec. 3.2)")
    _save(fig, path)
    plt.close(fig)
    return path


def plot_latents(stats: dict[str, LatentStats], path: Path) -> Path:
    """Per branch: mean KL per latent dimension and Var_x[mu_d], both sorted, with the 0.01 threshold."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(stats), figsize=(5 * len(stats), 6), squeeze=False, layout="constrained")
    for j, (branch, st) in enumerate(stats.items()):
        kl = sorted(st.mean_kl(), reverse=True)
        var = sorted(st.var_mu(), reverse=True)
        ax = axes[0][j]
        ax.bar(range(len(kl)), kl, width=1.0, color="tab:green")
        ax.set_title(f"{branch}: mean KL per dimension (sorted)")
        ax.set_ylabel("nats / frame")
        ax = axes[1][j]
        ax.bar(range(len(var)), [max(v, 1e-12) for v in var], width=1.0, color="tab:purple")
        ax.axhline(ACTIVE_THRESHOLD, color="red", linestyle="--", linewidth=1, label="active: Var > 0.01")
        ax.set_yscale("log")
        ax.set_title(f"{branch}: Var_x[mu_d] ({sum(st.active())}/{st.dim} active)")
        ax.set_xlabel("latent dimension (sorted)")
        ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return path
