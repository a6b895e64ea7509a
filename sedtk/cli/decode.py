"""``sedtk decode``: transcript, description and emotion (with its posterior) from audio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import BatchSizeOpt, DeviceOpt, user_errors
from sedtk.errors import OptionError

DEFAULT_TASKS_HELP = "the tasks the model was trained on"


def decode_cmd(
    files: Annotated[
        list[Path] | None, typer.Argument(help="More audio files (same as --wav).", show_default=False)
    ] = None,
    wav: Annotated[
        list[Path] | None,
        typer.Option(
            "--wav",
            help="Audio file(s) to decode: any sample rate, channel count, length (see --segment) "
            "and format (m4a, mp4, webm, ... through ffmpeg).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Experiment or checkpoint dir. Default: $SEDTK_MODEL, else the demo's model.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per file instead of panels.")
    ] = False,
    data: Annotated[
        Path | None, typer.Option("--data", help="Decode a whole data dir (needs --out).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Decode dir to write (with --data). With --wav: where timelines go "
            "(default: beside each input).",
        ),
    ] = None,
    feats: Annotated[
        Path | None,
        typer.Option("--feats", help="Read features from this 'sedtk feats dump' dir, not the audio."),
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks", help=f"Comma-separated tasks: asr, ser_sed, ser (default: {DEFAULT_TASKS_HELP})."
        ),
    ] = None,
    label_method: Annotated[
        str,
        typer.Option(
            "--label-method", help="parse | score | parse+score (parse, scoring where parsing fails)."
        ),
    ] = "parse+score",
    label_length_norm: Annotated[
        bool,
        typer.Option(
            "--label-length-norm",
            help="Label scoring: compare labels by their mean log-probability per token instead of the "
            "sum (labels of several tokens are then not penalised for their length). LLM model only.",
        ),  # fmt: skip
    ] = False,
    emotions: Annotated[
        str | None,
        typer.Option(
            "--emotions",
            help="Label inventory: a file (one per line) or 'neu,hap,ang,sad'. "
            "Default: the data dir's 'emotions', else the model's training labels.",
        ),  # fmt: skip
    ] = None,
    batch_size: BatchSizeOpt = 8,
    nj: Annotated[
        int, typer.Option("--nj", help="Parallel processes (each loads the model), with --data.")
    ] = 1,
    num_beams: Annotated[int, typer.Option("--num-beams", help="Beam size (1: greedy).")] = 1,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Longest answer, in tokens.")] = 256,
    max_duration: Annotated[
        float,
        typer.Option(
            "--max-duration",
            help="Longest utterance (seconds): longer files are segmented (--segment); "
            "longer data-dir utterances are refused.",
        ),
    ] = 30.0,
    segment: Annotated[
        str,
        typer.Option(
            "--segment",
            help="With --wav: auto | vad | fixed | none. vad: cut at pauses (Silero VAD) into segments "
            "of at most --max-duration and write a timeline (STEM.timeline.json, STEM.vtt, STEM.srt); "
            "fixed: equal windows; none: decode each file whole. auto: vad for files longer than "
            "--max-duration, whole otherwise.",
        ),
    ] = "auto",
    device: DeviceOpt = "auto",
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="best_ua | best_loss | last (default: first that exists)."),
    ] = None,
    llm: Annotated[
        str | None, typer.Option("--llm", help="Local copy of the base LLM (overrides the saved path).")
    ] = None,
    upstream: Annotated[
        str | None, typer.Option("--upstream", help="Local copy of the SSL upstream.")
    ] = None,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="LLM dtype to load (float32: faster on CPU).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --data: discard earlier results in --out.")
    ] = False,
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="Check every claim of the description against the audio's eGeMAPS measurements "
            "(supported / contradicted / not checkable). --wav: against population norms, in the panel "
            "and JSON; --data: against the data dir's speaker statistics, into OUT/evidence.jsonl.",
        ),
    ] = False,
) -> None:
    """Decode audio files (a panel per file) or a whole data dir (Kaldi-style files, resumable).

    \b
    sedtk decode --wav a.wav b.flac                 # the demo's model, or $SEDTK_MODEL
    sedtk decode --wav a.wav --model exp/sys7_stage2 --json
    sedtk decode --wav talk.m4a --out timelines/       # any length: an emotion timeline + subtitles
    sedtk decode --model EXP --data data/test --out EXP/decode_test --batch-size 16
    """
    import logging
    import sys

    from transformers.utils import logging as hf_logging

    from sedtk.cli.common import console
    from sedtk.decode.decoder import DecodeOptions, read_inventory_arg
    from sedtk.decode.model_ref import resolve_model

    hf_logging.disable_progress_bar()  # "Loading weights" bars: noise between the results
    paths = [str(p) for p in (wav or []) + (files or [])]
    with user_errors():
        if data is None and not paths:
            raise OptionError(
                "nothing to decode: give audio files (--wav a.wav ...) or a data dir (--data DIR --out DIR)"
            )
        if data is not None and paths:
            raise OptionError("give either audio files or --data, not both")
        if data is not None and out is None:
            raise OptionError("--data needs --out DIR (where the decode is written)")
        if data is None and (feats is not None or nj != 1):
            raise OptionError("--feats and --nj go with --data")
        options = DecodeOptions(
            tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
            label_method=label_method, label_length_norm=label_length_norm, num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size, max_duration=max_duration, device=device, llm=llm, upstream=upstream,
            checkpoint=checkpoint, dtype=dtype,
        )  # fmt: skip
        options.check()
        inventory = read_inventory_arg(emotions) if emotions else None
        ref = resolve_model(model)
        log = logging.getLogger("sedtk.decode").info  # progress: the sedtk log (stderr)
        log(f"model: {ref.describe()}")
        if data is not None:
            from sedtk.decode.run import decode_data_dir

            summary = decode_data_dir(
                ref.path, data, out, options, feats=feats, nj=nj, emotions=inventory, force=force
            )
            _print_summary(summary, out)
            if evidence:
                from sedtk.data.evidence import EVIDENCE_FILE, write_evidence

                _print_grounding(write_evidence(data, out, nj=nj), out / EVIDENCE_FILE)
            if summary["failed"] or summary["missing"]:
                raise typer.Exit(1)
            return
        from sedtk.decode.display import result_json, result_panel
        from sedtk.decode.timeline import Timeline, decode_audio_files

        con = console()
        failed = 0
        segment_evidence = None
        if evidence:  # each timeline segment's claims, checked against its own audio
            from sedtk.data.audio import SAMPLE_RATE
            from sedtk.data.evidence import evidence_for_audio

            def segment_evidence(wav, r):
                return evidence_for_audio(wav, SAMPLE_RATE, r.description)

        results = decode_audio_files(
            paths, ref.path, options, segment=segment, out_dir=out, inventory=inventory,
            evidence=segment_evidence, log=log,
        )  # fmt: skip
        for r in results:
            if isinstance(r, Timeline):
                failed += _show_timeline(r, as_json, con)
                continue
            if not r.ok:
                failed += 1
                typer.secho(f"error: {r.error}", fg="red", err=True)
                if as_json:
                    sys.stdout.write(result_json(r) + "\n")
                continue
            if evidence:
                from sedtk.data.evidence import attach_evidence

                attach_evidence(r)
            if as_json:
                sys.stdout.write(result_json(r, str(ref.path)) + "\n")
                sys.stdout.flush()
            else:
                con.print(result_panel(r))
    if failed:
        typer.secho(f"{failed} of {len(set(paths))} file(s) could not be decoded", fg="red", err=True)
        raise typer.Exit(1)


def _show_timeline(t, as_json: bool, con) -> int:
    """Print one recording's timeline (a JSON line or a panel); 1 if it or a segment failed."""
    import json
    import sys

    from sedtk.decode.timeline import timeline_panel

    if not t.ok:
        typer.secho(f"error: {t.error}", fg="red", err=True)
        if as_json:
            sys.stdout.write(json.dumps({"file": t.file, "error": t.error}, ensure_ascii=False) + "\n")
        return 1
    if as_json:
        sys.stdout.write(json.dumps(t.record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        con.print(timeline_panel(t))
    typer.secho(f"timeline: {'  '.join(str(p) for p in t.paths.values())}", err=True, fg="cyan")
    if t.failed_segments:
        typer.secho(f"{t.file}: {t.failed_segments} segment(s) could not be decoded", fg="red", err=True)
        return 1
    return 0


def _print_grounding(g: dict, path: Path) -> None:
    rates = [
        f"{a} {100 * d['grounding_rate']:.0f}%"
        for a, d in g["attributes"].items()
        if d["grounding_rate"] is not None
    ]
    shown = ", ".join(rates) or "none checkable"
    typer.echo(f"evidence: {path}; claims supported by the audio (grounding rate): {shown}", err=True)
    if g["unvoiced_utterances"]:
        typer.echo(f"evidence: {g['unvoiced_utterances']} utterance(s) have no voiced speech", err=True)


def _print_summary(s: dict, out: Path) -> None:
    rate = s["parse_failure_rate"]
    lines = [f"decoded {s['decoded']}/{s['utterances']} utterances into {out}"]
    if rate is not None:
        lines.append(
            f"label parse failures: {s['parse_failures']}/{s['decoded']} ({100 * rate:.1f}%); "
            f"label method {s['label_method']}"
        )
    if s["real_time_factor"] is not None:
        lines.append(f"real-time factor {s['real_time_factor']:.3f} ({s['audio_seconds']:.1f} s of audio)")
    for line in lines:
        typer.echo(line, err=True)
    if s["failed"]:
        typer.secho(
            f"{s['failed']} utterance(s) failed (listed in {out}/decode_summary.json):", fg="red", err=True
        )
        for k, e in list(s["errors"].items())[:10]:
            typer.secho(f"  {k}: {e}", fg="red", err=True)
    if s["missing"]:
        typer.secho(f"{s['missing']} utterance(s) have no result", fg="red", err=True)


def register(app: typer.Typer) -> None:
    app.command("decode")(decode_cmd)
