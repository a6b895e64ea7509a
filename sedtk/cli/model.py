"""``sedtk model``: model checkpoints (``init-tiny`` writes tiny random ones for tests and the demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors

app = typer.Typer(help="Model checkpoints.", no_args_is_help=True)


@app.command("init-tiny")
def init_tiny_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder; gets hubert/, llm/ and README.md.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the weights.")] = 0,
    hubert_cnn: Annotated[
        str,
        typer.Option(
            "--hubert-cnn",
            help="The HuBERT's CNN front end: standard (HuBERT's 7 layers) or light (2 layers, the same "
            "50 Hz frames; trains faster on CPU).",
        ),
    ] = "standard",
) -> None:
    """Write a tiny random HuBERT and a tiny random Llama (trained BPE tokenizer) for tests and the demo."""
    from sedtk.models.tiny import init_tiny

    with user_errors():
        models = init_tiny(out, seed=seed, hubert_cnn=hubert_cnn)
    typer.echo(f"upstream: {models.upstream}")
    typer.echo(f"llm:      {models.llm}")


@app.command("memory")
def memory_cmd(
    config: Annotated[
        str, typer.Option("--config", "-c", help="Config YAML, or a packaged name such as paper/sys7_stage2.")
    ],
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Utterances per GPU and step (default: train.batch_size)."),
    ] = None,
    max_duration: Annotated[
        float | None,
        typer.Option(
            "--max-duration", help="Seconds per utterance, the worst case (default: data.max_duration)."
        ),
    ] = None,
    answer_tokens: Annotated[int, typer.Option("--answer-tokens", help="Answer tokens per utterance.")] = 128,
    new_tokens: Annotated[int, typer.Option("--new-tokens", help="Generated tokens when decoding.")] = 128,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: section.key=value (repeatable).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cuda (adds the CUDA context) or cpu.")] = "cuda",
) -> None:
    """Parameters and estimated peak memory per GPU for training and decoding, by component.

    Reads the models' Hugging Face configs (local folder or hub id; the paper's two models have
    built-in shapes, so this works offline).  See sedtk/models/memory.py for what is counted.
    """
    from sedtk.config import load_config
    from sedtk.models.memory import estimate_memory, format_estimate

    with user_errors():
        cfg = load_config(config, set_ or [])
        est = estimate_memory(
            cfg, batch_size, max_duration, answer_tokens=answer_tokens, new_tokens=new_tokens, device=device
        )
    typer.echo(format_estimate(est))


EpochsOpt = Annotated[int, typer.Option("--epochs", help="Passes over the training set.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Examples per optimizer step.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Peak learning rate (linear warm-up, cosine decay).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (initialisation of new layers, order).")]


@app.command("pretrain-lm")
def pretrain_lm_cmd(
    llm: Annotated[str, typer.Argument(help="The causal LM to pre-train (a folder, e.g. models/llm).")],
    out: Annotated[Path, typer.Argument(help="Output folder (a Hugging Face checkpoint with tokenizer).")],
    sentences: Annotated[
        int, typer.Option("--sentences", help="Sentences of the synthetic corpus's grammar (never dev/test).")
    ] = 6000,
    descriptions: Annotated[
        int, typer.Option("--descriptions", help="Descriptions of how speech sounds (caption vocabulary).")
    ] = 2000,
    epochs: EpochsOpt = 2,
    batch_size: BatchOpt = 32,
    lr: LrOpt = 3e-3,
    seed: SeedOpt = 0,
) -> None:
    """Pre-train a tiny LLM as a language model on text of the demo corpus's grammar (Llama's analogue).

    The text: sentences of the synthetic corpus's grammar (never a dev or test sentence) and
    descriptions of how speech sounds; the dev sentences' loss is logged (sedtk/models/pretrain.py).
    """
    from sedtk.models.pretrain import PretrainSettings, pretrain_grammar_lm

    with user_errors():
        settings = PretrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        result = pretrain_grammar_lm(llm, out, sentences, descriptions, settings)
    typer.echo(f"{out}: {result['texts']} texts, {result['tokens']} tokens; last epoch {result['final']}")


@app.command("finetune-ctc")
def finetune_ctc_cmd(
    upstream: Annotated[str, typer.Argument(help="A HuBERT-style checkpoint folder (e.g. models/hubert).")],
    train: Annotated[Path, typer.Argument(help="Data dir with wav.scp and text.")],
    out: Annotated[Path, typer.Argument(help="Output folder (HubertForCTC, feature extractor, tokenizer).")],
    dev: Annotated[
        Path | None, typer.Option("--dev", help="Data dir whose CTC loss and greedy WER are logged.")
    ] = None,
    epochs: EpochsOpt = 10,
    batch_size: BatchOpt = 8,
    lr: LrOpt = 3e-3,
    mask_time_prob: Annotated[
        float, typer.Option("--mask-time-prob", help="Time masking of the CNN features while training.")
    ] = 0.0,
    units: Annotated[
        str, typer.Option("--units", help="CTC labels: chars (as hubert-large-ls960-ft) or words.")
    ] = "chars",
    seed: SeedOpt = 0,
) -> None:
    """Fine-tune an upstream for character CTC ASR before it is frozen (hubert-large-ls960-ft's analogue).

    Writes a *ForCTC checkpoint that `sedtk feats dump --upstream OUT` and the recipes load like any
    Hugging Face SSL model (sedtk/models/pretrain.py).
    """
    from sedtk.models.pretrain import PretrainSettings, finetune_ctc

    with user_errors():
        settings = PretrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        result = finetune_ctc(
            upstream, train, out, dev=dev, settings=settings, mask_time_prob=mask_time_prob, units=units
        )
    typer.echo(f"{out}: {result['train_utts']} utterances; last epoch {result['final']}")


@app.command("export")
def export_cmd(
    exp: Annotated[Path, typer.Argument(help="Experiment dir of a finished 'sedtk train' run.")],
    out: Annotated[Path, typer.Argument(help="Folder to write (upload it with: hf upload ORG/NAME OUT).")],
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="best_ua | best_loss | last (default: the first there)."),
    ] = None,
    score: Annotated[
        Path | None, typer.Option("--score", help="The run's 'sedtk score' dir or score.json (card metrics).")
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", help="This model's row in score.json (default: decoded from EXP)."),
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Training dataset: hub id or name (repeatable).")
    ] = None,
    language: Annotated[
        list[str] | None,
        typer.Option("--language", help="Language code: en, zh, ... (default: score.json's)."),
    ] = None,
    llm_id: Annotated[
        str | None,
        typer.Option("--llm-id", help="Hub id[@revision] of the LLM when model.llm is a local copy."),
    ] = None,
    upstream_id: Annotated[
        str | None, typer.Option("--upstream-id", help="Hub id[@revision] of the SSL upstream (local copy).")
    ] = None,
    bundle_base: Annotated[
        bool, typer.Option("--bundle-base", help="Copy the base models into OUT/base/ (small or private).")
    ] = False,
    repo_id: Annotated[
        str | None, typer.Option("--repo-id", help="The hub id it will be uploaded as (the card's usage).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The card's title.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
) -> None:
    """Write a finished run as a folder for the Hugging Face Hub: weights, config, base models, model card.

    `sedtk decode --model OUT` (or the hub id it is uploaded as) and `sedtk.load_model` load it.
    See sedtk/models/export.py for what the folder holds.
    """
    from sedtk.models.export import export_model

    with user_errors():
        res = export_model(
            exp, out, checkpoint=checkpoint, score=score, system=system, datasets=dataset or [],
            languages=language or [], llm_id=llm_id, upstream_id=upstream_id, bundle_base=bundle_base,
            repo_id=repo_id, name=name, force=force,
        )  # fmt: skip
    for w in res.warnings:
        typer.secho(f"warning: {w}", fg="yellow", err=True)
    bases = ", ".join(f"{b.role} {b.ref}" for b in res.base_models) or "none"
    typer.echo(f"exported {res.checkpoint} -> {res.out} (base models: {bases})")


@app.command("download")
def download_cmd(
    ids: Annotated[
        list[str] | None,
        typer.Argument(help="Hub ids, e.g. meta-llama/Llama-3.1-8B-Instruct.", show_default=False),
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option("--config", "-c", help="Also the LLM and upstream of this config (repeatable)."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", help="Cache folder to fill (default: HF_HUB_CACHE, else ~/.cache/huggingface/hub)."
        ),
    ] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Branch, tag or commit.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Also Meta's original-format weights (original/*) of Llama repos.")
    ] = False,
) -> None:
    """Pre-fill a Hugging Face cache for compute nodes without internet (huggingface_hub.snapshot_download).

    \b
    sedtk model download meta-llama/Llama-3.1-8B-Instruct facebook/hubert-large-ls960-ft --cache /shared/hf
    sedtk model download --config paper/sys7_stage2 --cache /shared/hf
    # on the compute nodes:
    export HF_HUB_CACHE=/shared/hf HF_HUB_OFFLINE=1
    """
    from sedtk.errors import OptionError
    from sedtk.utils.hub import download

    with user_errors():
        names = list(ids or [])
        for c in config or []:
            from sedtk.config import load_config

            cfg = load_config(c)
            names += [n for n in (cfg.model.llm, cfg.model.upstream) if n and n not in ("fbank", "fbank-raw")]
        names = list(dict.fromkeys(names))
        if not names:
            raise OptionError("nothing to download: give hub ids or --config")
        paths = download(names, cache, revision=revision, everything=everything)
    for name, path in zip(names, paths, strict=True):
        typer.echo(f"{name}: {path}")
    from sedtk.utils.hub import cache_dir

    where = cache if cache is not None else cache_dir()
    typer.echo(f"on nodes without internet: export HF_HUB_CACHE={where} HF_HUB_OFFLINE=1", err=True)
