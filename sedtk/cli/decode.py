"""``sedtk decode``: transcript, description and emotion (with its posterior) from audio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import BatchSizeOpt, CalibrationOpt, DeviceOpt, user_errors

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
            help="Experiment, checkpoint or 'sedtk model export' dir, or an export's hub id ORG/NAME[@REV]. "
            "Default: $SEDTK_MODEL, else the demo's model.",
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
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="I/N: decode every N-th utterance from the I-th into OUT/parts (one of N jobs, each on its "
            "own GPU); a run without --shard then merges them. With --data.",
        ),
    ] = None,
    num_beams: Annotated[int, typer.Option("--num-beams", help="Beam size (1: greedy).")] = 1,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Longest answer, in tokens.")] = 256,
    max_duration: Annotated[
        float | None,
        typer.Option(
            "--max-duration",
            help="Longest input decoded whole (seconds). --wav: longer files become a timeline of "
            "segments of at most this (--segment; default 30). --data: longer utterances are decoded "
            "through their VAD segments, marked 'segmented' (default 45: all of IEMOCAP and MELD's "
            "normal clips).",
            show_default=False,
        ),
    ] = None,
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
    no_speech_control: Annotated[
        bool,
        typer.Option(
            "--no-speech-control",
            help="The no-speech control: decode with the speech embeddings zeroed (same model, same "
            "prompt), so the answers are the LLM's prior alone. LLM model only.",
        ),
    ] = False,
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="Check every claim of the description against the audio's eGeMAPS measurements "
            "(supported / contradicted / uncertain / not checkable). --wav: against --calibration or "
            "population norms, in the panel and JSON; --data: against --calibration or the data dir's "
            "speaker statistics, into OUT/evidence.jsonl.",
        ),
    ] = False,
    calibration: CalibrationOpt = None,
) -> None:
    """Decode audio files (a panel per file) or a whole data dir (Kaldi-style files, resumable).

    \b
    sedtk decode --wav a.wav b.flac                 # the demo's model, or $SEDTK_MODEL
    sedtk decode --wav a.wav --model exp/sys7_stage2 --json
    sedtk decode --wav talk.m4a --out timelines/       # any length: an emotion timeline + subtitles
    sedtk decode --model EXP --data data/test --out EXP/decode_test --batch-size 16
    """
    from sedtk.cli.common import console
    from sedtk.decode.command import DecodeRequest, parse_shard, run_decode
    from sedtk.decode.decoder import DecodeOptions

    with user_errors():
        options = DecodeOptions(
            tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
            label_method=label_method, label_length_norm=label_length_norm, num_beams=num_beams,
            max_new_tokens=max_new_tokens, batch_size=batch_size, max_duration=max_duration,
            device=device, llm=llm, upstream=upstream, checkpoint=checkpoint, dtype=dtype,
            no_speech_control=no_speech_control,
        )  # fmt: skip
        request = DecodeRequest(
            paths=[str(p) for p in (wav or []) + (files or [])], data=data, out=out, model=model,
            feats=feats, nj=nj, shard=parse_shard(shard), emotions=emotions, segment=segment,
            evidence=evidence, as_json=as_json, force=force, options=options, calibration=calibration,
        )  # fmt: skip
        status = run_decode(request, console())
    if status:
        raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    app.command("decode")(decode_cmd)
