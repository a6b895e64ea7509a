"""``sedtk explain``: make a trained model's explainability visible.

Writes into ``OUT`` (fixed names):

====================  ===================================================================
``explain.md``        the report: what each figure and table shows, with the definitions
``explain.json``      the same numbers, machine-readable
``layer_weights.tsv`` softmax weighted-sum weight of every SSL hidden state, per branch
``layer_weights.png`` the same as bar plots
``latent_units.tsv``  per branch and latent dimension: mean KL, Var_x[mu_d], active (with --data)
``latent_units.png``  sorted per-dimension KL and Var_x[mu_d] with the 0.01 threshold (with --data)
``utterances.tsv``    reference vs predicted emotion / description / attributes (with --decode)
``utterances.md``     the first rows of the same, as a table (with --decode)
(decode dir)          ``evidence.jsonl`` of the decode dir: each generated claim checked against
                      the audio (:mod:`sedtk.data.evidence`; written there if absent)
====================  ===================================================================
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

from sedtk.data.datadir import DataDir
from sedtk.errors import OptionError
from sedtk.explain.latent import (
    ACTIVE_THRESHOLD,
    BranchBlocks,
    LatentStats,
    add_latent_batch,
    layer_weights,
    load_blocks,
    new_latent_stats,
)
from sedtk.explain.utterances import (
    agreement_summary,
    emotion_summary,
    pair_utterances,
    rows_markdown,
    rows_tsv,
)
from sedtk.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

#: Where a caller may send the messages instead of the ``sedtk.explain.run`` logger.
Log = Callable[[str], None]


def pick_keys(keys: list[str], max_utts: int) -> list[str]:
    """At most ``max_utts`` keys spread evenly over the sorted list (all when ``max_utts`` is 0)."""
    if max_utts <= 0 or len(keys) <= max_utts:
        return list(keys)
    step = len(keys) / max_utts
    return [keys[int(i * step)] for i in range(max_utts)]


class _BlockRunner:
    """Runs the branch blocks over each batch that :func:`sedtk.decode.run.decode_keys` loads.

    It takes a decoder's place there (``options.batch_size`` and ``decode_batch``), so explain's
    batches come from decode's own load-and-batch loop: the same length-sorted batches, and an
    utterance that cannot be read is a failed result while the rest of its batch goes on.  Only the
    two blocks (and, from audio, the upstream) run; the LLM is never loaded.
    """

    def __init__(self, bb: BranchBlocks, stats: dict[str, LatentStats], batch_size: int, device, upstream):
        from sedtk.decode.decoder import DecodeOptions

        self.bb, self.stats, self.device, self.upstream = bb, stats, device, upstream
        self.options = DecodeOptions(batch_size=batch_size)

    def decode_batch(self, batch, durations):
        """Add one ``SpeechBatch`` (waveforms through the upstream, or dumped layers) to the statistics."""
        import torch

        from sedtk.decode.outputs import UttResult

        with torch.no_grad():
            if batch.feats is None:
                hidden, lengths = self.upstream([w.to(self.device) for w in batch.wavs])
            else:
                hidden, lengths = batch.feats, batch.feat_lengths
            add_latent_batch(self.bb, self.stats, hidden.to(self.device).float(), lengths.to(self.device))
        return [UttResult(key=k, duration=d) for k, d in zip(batch.keys, durations, strict=True)]


def _latent_stats(
    bb: BranchBlocks,
    data: DataDir,
    keys: list[str],
    feats,
    batch_size: int,
    device,
    upstream: str | None,
) -> tuple[dict[str, LatentStats], dict[str, str]]:
    """The blocks' statistics over ``keys`` from a dump or from the audio, and the skipped keys' errors."""
    from sedtk.decode.run import decode_keys
    from sedtk.decode.sources import AudioSource, FeatureSource

    stats = new_latent_stats(bb)
    if not stats:
        return stats, {}
    m = bb.config.model
    up = None
    if feats is not None:
        from sedtk.data.fingerprint import fingerprints

        # features of audio that changed since the dump are skipped (counted), never explained
        source = FeatureSource(feats, m, max_duration=math.inf, expected=fingerprints(data, keys))
    else:
        from dataclasses import replace

        from sedtk.models.sed_model import load_model_upstream

        up = load_model_upstream(replace(m, upstream=upstream) if upstream else m, device)
        source = AudioSource(data, max_duration=math.inf, min_samples=up.min_samples)
    errors: dict[str, str] = {}

    def skipped(results) -> None:
        errors.update((r.key, r.error) for r in results if r.error is not None)

    decode_keys(_BlockRunner(bb, stats, batch_size, device, up), source, keys, skipped)
    return stats, errors


def explain(
    model: str | os.PathLike,
    out: str | os.PathLike,
    data: str | os.PathLike | None = None,
    decode: str | os.PathLike | None = None,
    feats: str | os.PathLike | None = None,
    checkpoint: str | None = None,
    max_utts: int = 1000,
    batch_size: int = 8,
    device: str = "auto",
    upstream: str | None = None,
    log: Log | None = None,
    calibration: str | os.PathLike | None = None,
) -> dict:
    """Write the explanation of ``model`` into ``out`` (see the module docstring); returns its summary.

    Progress goes to the ``sedtk.explain.run`` logger (skipped utterances as warnings), or to ``log``.
    """
    from sedtk.explain.plots import plot_latents, plot_layer_weights
    from sedtk.utils.device import pick_device

    if decode is not None and data is None:
        raise OptionError("--decode needs --data (the reference data dir the decode is compared with)")
    if feats is not None and data is None:
        raise OptionError("--feats needs --data (the utterances to run the blocks over)")
    out = Path(out)
    info = log or logger.info
    warn = log or logger.warning
    device = pick_device(device)
    bb = load_blocks(model, checkpoint)  # before anything is written: a bad model leaves no folder
    out.mkdir(parents=True, exist_ok=True)
    info(f"model: {bb.checkpoint}")
    summary: dict = {
        "checkpoint": str(bb.checkpoint),
        "model_kind": bb.kind,
        "feature_disentanglement": bb.has_latents,
    }

    # -- layer weights -------------------------------------------------------------------------
    lw = layer_weights(bb)
    summary["layer_weights"] = {b: {str(i): round(w, 6) for i, w in v} for b, v in lw.items()}
    atomic_write_text(out / "layer_weights.tsv", _layer_tsv(lw))
    plot_layer_weights(lw, out / "layer_weights.png")

    # -- latent units --------------------------------------------------------------------------
    stats: dict[str, LatentStats] = {}
    data_dir = DataDir.load(data) if data is not None else None
    if data_dir is not None and bb.has_latents:
        keys = pick_keys(data_dir.utts, max_utts)
        info(f"running both blocks over {len(keys)} utterances of {data} ...")
        for block in bb.blocks.values():
            block.to(device)
        stats, errors = _latent_stats(bb, data_dir, keys, feats, batch_size, device, upstream)
        for e in list(errors.values())[:10]:
            warn(f"skipped: {e}")
        if errors:
            warn(f"skipped {len(errors)} utterance(s) that could not be read")
        summary["latent"] = {
            b: {
                "dim": st.dim,
                "frames": st.frames,
                "utterances": st.utterances,
                "active_units": sum(st.active()),
                "total_mean_kl": round(sum(st.mean_kl()), 6),
            }
            for b, st in stats.items()
        }
        summary["latent_skipped"] = len(errors)
        if stats and all(st.frames > 0 for st in stats.values()):
            atomic_write_text(out / "latent_units.tsv", _latent_tsv(stats))
            plot_latents(stats, out / "latent_units.png")

    # -- utterances ----------------------------------------------------------------------------
    rows = []
    if decode is not None:
        rows = pair_utterances(data_dir, decode)
        atomic_write_text(out / "utterances.tsv", rows_tsv(rows))
        atomic_write_text(out / "utterances.md", rows_markdown(rows))
        summary["utterances"] = len(rows)
        summary["emotion"] = emotion_summary(rows)
        summary["attributes"] = agreement_summary(rows)
        summary["grounding"] = _grounding(data, decode, info, calibration)

    atomic_write_text(out / "explain.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / "explain.md", _report(summary, lw, stats, rows, data, decode))
    return summary


def _grounding(data, decode, log: Log, calibration=None) -> dict:
    """Evidence of the decode's descriptions (evidence.jsonl of the decode dir, computed if absent)."""
    from sedtk.data.audio import AudioError
    from sedtk.data.calibration import load_calibration
    from sedtk.data.evidence import decode_evidence, grounding_summary

    if not (Path(decode) / "utt2desc").exists():
        return {"not_computed": f"{decode} has no utt2desc"}
    cal = load_calibration(calibration) if calibration is not None else None
    log("checking the descriptions' claims against the audio (evidence.jsonl) ...")
    try:
        ev = decode_evidence(data, decode, calibration=cal)
    except (AudioError, OSError) as e:
        return {"not_computed": f"the audio of {data} could not be measured: {e}"}
    out = grounding_summary(ev.values())
    out["reference"] = cal.describe() if cal is not None else "the data dir's own statistics"
    out["examples"] = [
        {"key": k, **c} for k, r in ev.items() for c in r["claims"] if c["verdict"] == "contradicted"
    ][:10]
    return out


def _layer_tsv(lw: dict[str, list[tuple[int, float]]]) -> str:
    ids = sorted({i for v in lw.values() for i, _ in v})
    lines = ["hidden_state\t" + "\t".join(lw)]
    for i in ids:
        lines.append(f"{i}\t" + "\t".join(f"{dict(v).get(i, float('nan')):.6f}" for v in lw.values()))
    return "\n".join(lines) + "\n"


def _latent_tsv(stats: dict[str, LatentStats]) -> str:
    lines = ["branch\tdim\tmean_kl\tvar_mu\tactive"]
    for b, st in stats.items():
        for d, (kl, var, act) in enumerate(zip(st.mean_kl(), st.var_mu(), st.active(), strict=True)):
            lines.append(f"{b}\t{d}\t{kl:.6g}\t{var:.6g}\t{int(act)}")
    return "\n".join(lines) + "\n"


def _grounding_md(g: dict, decode) -> list[str]:
    md = ["", "### Evidence: the generated claims checked against the audio", ""]
    if "not_computed" in g:
        return md + [f"Not computed: {g['not_computed']}."]
    from sedtk.data.evidence import grounding_markdown

    md += [
        "Each claim the description makes (parsed by `sedtk.data.attributes`) is checked against the "
        "eGeMAPS measurements of its audio, binned by the bands `sedtk data describe` bins by (reference: "
        f"{g.get('reference', 'the data dir')}). Grounding rate = supported / (supported + "
        f"contradicted). Per claim: `{decode}/evidence.jsonl`.",
        "",
        *grounding_markdown(g),
    ]
    if g.get("unvoiced_utterances"):
        md += ["", f"{g['unvoiced_utterances']} utterance(s) have no voiced speech."]
    if g.get("examples"):
        md += ["", "Contradicted claims (first 10):", ""]
        md += [f'- `{e["key"]}`: "{e["claim"]}" -- {e["reason"]}' for e in g["examples"]]
    return md


def _report(summary: dict, lw, stats, rows, data, decode) -> str:
    md = ["# sedtk explain", "", f"Checkpoint: `{summary['checkpoint']}`", ""]
    ssl = summary.get("model_kind") == "ssl_ser"
    if ssl:
        weighting = (
            "This is an SSL SER baseline (`model.kind: ssl_ser`, Tab. 2 Sys. 1-3): its emotion head and "
            "its CTC (transcript) head each mix the frozen SSL hidden states with `softmax(w)` (hidden "
            "state 0 is the CNN output, *i* the output of Transformer layer *i*; all weights start equal "
            "at 1/L). Where the two heads put their weight shows which layers carry emotion and which "
            "carry the words."
        )
    else:
        weighting = (
            "Each branch mixes the frozen SSL hidden states with `softmax(w)` (hidden state 0 is the CNN "
            "output, *i* the output of Transformer layer *i*; all weights start equal at 1/L). Where the "
            "two branches put their weight shows which layers carry content and which carry speech "
            "descriptors."
        )
    md += [
        "## Layer weights (Sec. 3.2)",
        "",
        weighting,
        "",
        "![layer weights](layer_weights.png)",
        "",
        "| hidden state | " + " | ".join(lw) + " |",
        "|---|" + "---|" * len(lw),
    ]
    ids = sorted({i for v in lw.values() for i, _ in v})
    for i in ids:
        md.append(f"| {i} | " + " | ".join(f"{dict(v).get(i, float('nan')):.4f}" for v in lw.values()) + " |")
    md.append("")
    for b, v in lw.items():
        top = sorted(v, key=lambda iv: -iv[1])[:3]
        md.append(f"- {b}: heaviest hidden states " + ", ".join(f"{i} ({w:.3f})" for i, w in top))
    md += ["", "## Latent units (Sec. 2.2, Eq. 2)", ""]
    if stats:
        md += [
            "- **Per-dimension KL**: "
            "`KL(N(mu_d, sigma_d^2) || N(0,1)) = (mu_d^2 + sigma_d^2 - 1)/2 - log sigma_d`, "
            "averaged over every valid frame.",
            "- **Active unit** (Burda et al., 2016): dimension *d* is active when "
            f"`Var_x[mu_d(x)] > {ACTIVE_THRESHOLD}`, the variance taken over every valid frame *x* of the "
            "data dir (z is a per-frame latent).",
            f"- Data: `{data}`.",
            "",
            "![latent units](latent_units.png)",
            "",
            "| branch | latent dim | active units | total mean KL (nats/frame) | frames | utterances |",
            "|---|---|---|---|---|---|",
        ]
        for b, s in summary["latent"].items():
            md.append(
                f"| {b} | {s['dim']} | {s['active_units']} | {s['total_mean_kl']:.4f} | {s['frames']} "
                f"| {s['utterances']} |"
            )
    elif ssl:
        md.append(
            "An SSL SER baseline has no disentanglement blocks (no Gaussian latents): no latent units "
            "to report."
        )
    elif not summary["feature_disentanglement"]:
        md.append("This model has no disentanglement blocks (weighted sum only): no latent units to report.")
    else:
        md.append(
            "Not computed: give `--data DATA_DIR` (optionally `--feats DUMP`) to run the blocks over data."
        )
    md += ["", "## Utterances: reference vs predicted descriptors", ""]
    if decode is not None:
        e = summary["emotion"]
        if e["accuracy"] is not None:
            md.append(f"Emotion: {e['correct']}/{e['utterances']} correct ({100 * e['accuracy']:.1f}%).")
        if summary["attributes"]:
            md += [
                "",
                "Attributes named in the generated description (string match of the caption phrases, e.g. "
                "'high pitch'; a paraphrase counts as silent):",
                "",
                "| attribute | agree | disagree | silent | agreement when mentioned |",
                "|---|---|---|---|---|",
            ]
            for a, d in summary["attributes"].items():
                rate = d["agreement_when_mentioned"]
                rate_s = f"{100 * rate:.1f}%" if rate is not None else "n/a"
                md.append(f"| {a} | {d['agree']} | {d['disagree']} | {d['silent']} | {rate_s} |")
        md += _grounding_md(summary.get("grounding") or {}, decode)
        md += [
            "",
            f"Reference `{data}` vs decode `{decode}` (all rows: utterances.tsv):",
            "",
            rows_markdown(rows, 20),
        ]
    else:
        md.append("Not computed: give `--data DATA_DIR --decode DECODE_DIR` (a `sedtk decode --out` dir).")
    return "\n".join(md) + "\n"
