"""``sedtk data synth`` (the espeak-ng demo corpus) and ``sedtk data describe`` (derived descriptors)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors

SYNTH_HELP = (
    "Synthesise a small emotional-speech corpus with espeak-ng: 8 voices, 4 emotions (neu hap ang sad).\n\n"
    "Sentences come from a small grammar (76 words).  Writes wav.scp, text, utt2spk, utt2emo, emotions, "
    "utt2dur, utt2attr (pitch/range/volume/pace bins and the true numeric settings) and SpeechCraft-style "
    "utt2desc (description style by default: how it sounds, no transcript).  Re-runs reuse the finished "
    "wavs.  With --split, OUT/dev and OUT/test hold sentences that OUT/train never contains, made of train "
    "words only; OUT/corpus_stats.json reports the vocabulary and the out-of-vocabulary rate "
    "(needs >= 16 utterances)."
)
DESCRIBE_HELP = (
    "Derive pitch, volume, pace and pitch-range labels and captions from the audio.\n\n"
    "THESE ARE DERIVED PSEUDO-LABELS, NOT HUMAN ANNOTATIONS.  openSMILE eGeMAPS v02 measurements "
    "(F0 level and range in semitones, speech level, syllables of the transcript per second of VAD speech "
    "or, without text, syllable nuclei per second) are binned by the bands of --calibration (learned "
    "on labelled data by sedtk data calibrate), else z-scored within speaker (or gender, or the whole "
    "dir, for speakers with few utterances) and binned at +-0.5 SD into low/normal/high.\n\n"
    "Writes utt2attr (existing attributes kept; source=derived), utt2desc (SpeechCraft-style, with the "
    "emotion word and the quoted transcript where known) and descriptor_feats.tsv (the measurements).  "
    "Refuses to replace an existing utt2desc without --force."
)


def synth_cmd(
    out: Annotated[Path, typer.Argument(help="Output data dir (wavs go to OUT/wav/).")],
    num_utts: Annotated[int, typer.Option("--num-utts", "-n", help="Number of utterances.")] = 800,
    seed: Annotated[int, typer.Option("--seed", help="Seed; the same seed gives the same bytes.")] = 0,
    nj: Annotated[int, typer.Option("--nj", help="Parallel espeak-ng processes.")] = 2,
    split: Annotated[
        bool, typer.Option("--split", help="Also write OUT/train, OUT/dev, OUT/test (held-out sentences).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-synthesise everything (any seed).")] = False,
    extra_sentences: Annotated[
        int,
        typer.Option(
            "--extra-sentences",
            help="More training sentences from the grammar (a larger set for the ASR parts of the demo); "
            "dev and test sentences are the same, and never in train.",
        ),
    ] = 0,
    caption_style: Annotated[
        str,
        typer.Option(
            "--caption-style",
            help="description: how the speech sounds, no transcript (SpeechCraft 'description'); "
            "instruction: also quotes the transcript (the paper's Figure 1).",
        ),
    ] = "description",
) -> None:
    """Parse the options and call :func:`sedtk.data.synth.synthesize` (and ``split_synth``)."""
    import json

    from sedtk.data.synth import corpus_stats, split_synth, synthesize
    from sedtk.utils.io import atomic_write_text

    with user_errors():
        data = synthesize(
            out, num_utts=num_utts, seed=seed, nj=nj, force=force, caption_style=caption_style,
            extra_sentences=extra_sentences,
        )  # fmt: skip
        typer.echo(f"{out}: {len(data)} utterances")
        if split:
            splits = split_synth(data, out)
            for name, part in splits.items():
                typer.echo(f"{out / name}: {len(part)} utterances")
            stats = corpus_stats(splits)
            atomic_write_text(out / "corpus_stats.json", json.dumps(stats, indent=1) + "\n")
            oov = ", ".join(f"{n} {stats[n]['oov_rate']:.1%}" for n in ("dev", "test"))
            typer.echo(f"vocabulary {stats['vocabulary']} words; out-of-vocabulary rate: {oov}")


def describe_cmd(
    data: Annotated[Path, typer.Argument(help="A data dir without utt2desc (IEMOCAP, MELD...).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the result here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing utt2desc.")] = False,
    nj: Annotated[int, typer.Option("--nj", help="Parallel workers for the measurements.")] = 2,
    min_group: Annotated[
        int, typer.Option("--min-group", help="Fewest utterances a speaker needs to be binned on its own.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the choice of caption wording.")] = 0,
    lang: Annotated[
        str,
        typer.Option(
            "--lang", help="Caption language: en, zh, or auto (the data dir's 'lang' file, else en)."
        ),
    ] = "auto",
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="Bin by the bands of a calibration file (sedtk data calibrate) instead of z-scores.",
        ),
    ] = None,
    copy_to: Annotated[
        list[Path] | None,
        typer.Option(
            "--copy-to", help="Data dir of a subset (fold, split) to give the same descriptors (repeatable)."
        ),
    ] = None,
) -> None:
    """Parse the options and call :func:`sedtk.data.describe.describe`."""
    from sedtk.data.describe import describe

    with user_errors():
        result = describe(
            data, out=out, force=force, nj=nj, min_group=min_group, seed=seed, lang=lang,
            calibration=calibration, copy_to=copy_to or [],
        )  # fmt: skip
        typer.echo(f"{out or data}: derived descriptions for {len(result)} utterances")


def register(app: typer.Typer) -> None:
    """Add ``synth`` and ``describe`` to the ``sedtk data`` group."""
    app.command("synth", help=SYNTH_HELP)(synth_cmd)
    app.command("describe", help=DESCRIBE_HELP)(describe_cmd)
