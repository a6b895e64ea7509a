"""How ``sedtk decode --wav`` shows a result: a rich panel per file, or one JSON object per file."""

from __future__ import annotations

import json

from sedtk.decode.outputs import UttResult

BAR_WIDTH = 30


def result_record(r: UttResult, model: str | None = None) -> dict:
    """The JSON object printed for one file by ``sedtk decode --wav ... --json``."""
    if not r.ok:
        return {"file": r.key, "error": r.error}
    out = {
        "file": r.key,
        "transcript": r.transcript,
        "description": r.description,
        "emotion": r.emotion,
        "probability": r.probability,
        "posterior": r.posterior,
        "emotion_parsed": r.emotion_parsed,
        "parse_failed": r.parse_failed,
        "raw": r.raw,
        "duration": r.duration,
        "evidence": r.evidence,
        "posterior_from": r.posterior_from,
        "no_speech": r.no_speech,
        "speech_seconds": r.speech_seconds,
    }
    if model is not None:
        out["model"] = model
    return {k: v for k, v in out.items() if v is not None}


def result_json(r: UttResult, model: str | None = None) -> str:
    return json.dumps(result_record(r, model), ensure_ascii=False)


def result_panel(r: UttResult):
    """A rich renderable for one successfully decoded file."""
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold cyan", no_wrap=True)
    fields.add_column(overflow="fold")
    if r.no_speech:
        fields.add_row(Text("no speech", style="bold yellow"), Text(NO_SPEECH_NOTE, style="bold yellow"))
    if r.transcript is not None:
        fields.add_row("transcript", r.transcript or "(empty)")
    if r.description is not None:
        fields.add_row("description", r.description or "(empty)")
    head = r.posterior_from == "emotion_head"  # the SSL SER baseline: a classifier, no label scoring
    if r.emotion is not None:
        p = r.probability
        if head:
            how = "the emotion head's most probable class"
        elif not r.parse_failed:
            how = "parsed from the answer"
        else:
            how = "by label scoring (the answer named no label)"
        emo = Text(r.emotion, style="bold magenta")
        if p is not None:
            emo.append(f"  p={p:.3f}", style="magenta")
        emo.append(f"  ({how})", style="dim")
        if r.no_speech:
            emo.append("  [no speech: not meaningful]", style="bold yellow")
        fields.add_row("emotion", emo)
    parts = [fields]
    if r.posterior:
        dist = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left")
        dist.add_column("label")
        dist.add_column("probability", justify="right")
        dist.add_column("")
        for label, p in sorted(r.posterior.items(), key=lambda kv: -kv[1]):
            style = "bold magenta" if label == r.emotion else ""
            bar = "█" * round(p * BAR_WIDTH)
            dist.add_row(Text(label, style=style), f"{p:.3f}", Text(bar, style="magenta"))
        title = (
            "emotion posterior (softmax of the emotion head)"
            if head
            else "label distribution (constrained scoring)"
        )
        parts += [Text(""), Text(title, style="bold"), dist]
    if r.evidence is not None:
        parts += [Text(""), *evidence_renderables(r.evidence)]
    title = f"{r.key}" + (f"  ({r.duration:.2f} s)" if r.duration else "")
    border = "yellow" if r.no_speech else "green"
    return Panel(Group(*parts), title=title, title_align="left", border_style=border)


#: What the panel says of audio without speech (the answer is kept, but is the model's guess).
NO_SPEECH_NOTE = (
    "the voice activity detector (Silero VAD) found no speech in this audio: the answers below are the "
    "model's guesses on non-speech (silence, noise, a tone), not a transcript, description or emotion"
)


def no_speech_warning(what: str, seconds: float | None) -> str:
    """The warning line printed for an input without speech."""
    found = f" ({seconds:.2f} s of speech frames)" if seconds else ""
    return f"warning: {what}: no speech detected (Silero VAD{found}); its answer is not meaningful"


VERDICT_STYLE = {
    "supported": "green",
    "contradicted": "bold red",
    "uncertain": "yellow",
    "not checkable": "dim",
}


def evidence_renderables(ev: dict) -> list:
    """The evidence of one description (:mod:`sedtk.data.evidence`) as a heading and a table."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    head = Text("evidence (measured with eGeMAPS)", style="bold")
    head.append(f"  reference: {ev.get('reference')}", style="dim")
    out = [head]
    if ev.get("note"):
        out.append(Text(ev["note"], style="bold yellow"))
    if not ev.get("claims"):
        out.append(Text("the description makes no claim the parser recognises", style="dim"))
        return out
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("claim", "measured", "bin", "verdict", "why"):
        table.add_column(col, overflow="fold")
    for c in ev["claims"]:
        measured = "" if c.get("measured") is None else f"{c['measured']:.4g} {c.get('unit') or ''}".strip()
        claim = ("not " if c.get("negated") else "") + f"{c['attribute']}={c['value']}"
        table.add_row(
            Text(f'"{c["claim"]}"  ({claim})'),
            measured,
            c.get("bin") or "",
            Text(c["verdict"], style=VERDICT_STYLE.get(c["verdict"], "")),
            Text(c.get("reason") or "", style="dim"),
        )
    out.append(table)
    return out


# ----------------------------------------------------------------------------- the command's lines


def err_console():
    """The console of the command's messages: stderr, no wrapping (error lines stay greppable)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def show_result(r: UttResult, as_json: bool, con, err, model: str | None = None) -> bool:
    """Print one ``--wav`` file's result (a JSON line or a panel; a failure on stderr); False if it failed."""
    import sys

    if not r.ok:
        err.print(f"error: {r.error}", style="red", markup=False)
        if as_json:
            sys.stdout.write(result_json(r) + "\n")
        return False
    if r.no_speech:
        err.print(no_speech_warning(r.key, r.speech_seconds), style="yellow", markup=False)
    if as_json:
        sys.stdout.write(result_json(r, model) + "\n")
        sys.stdout.flush()
    else:
        con.print(result_panel(r))
    return True


def show_timeline(t, as_json: bool, con, err) -> bool:
    """Print one recording's timeline (a JSON line or a panel) and its files; False if anything failed."""
    import sys

    from sedtk.decode.timeline import timeline_panel

    if not t.ok:
        err.print(f"error: {t.error}", style="red", markup=False)
        if as_json:
            sys.stdout.write(json.dumps({"file": t.file, "error": t.error}, ensure_ascii=False) + "\n")
        return False
    summary = t.record.get("summary", {})
    if t.record.get("no_speech"):
        err.print(no_speech_warning(t.file, None), style="yellow", markup=False)
    elif summary.get("no_speech_segments"):
        n = summary["no_speech_segments"]
        err.print(
            f"warning: {t.file}: {n} segment(s) have no speech (Silero VAD): their answers are flagged "
            "no_speech in the timeline",
            style="yellow",
            markup=False,
        )
    if as_json:
        sys.stdout.write(json.dumps(t.record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        con.print(timeline_panel(t))
    err.print(f"timeline: {'  '.join(str(p) for p in t.paths.values())}", style="cyan", markup=False)
    if t.failed_segments:
        err.print(f"{t.file}: {t.failed_segments} segment(s) could not be decoded", style="red", markup=False)
        return False
    return True


def summary_lines(s: dict, out) -> list[tuple[str, str]]:
    """``(line, style)`` pairs saying what a data-dir decode did (``decode_summary.json``)."""
    lines = [(f"decoded {s['decoded']}/{s['utterances']} utterances into {out}", "")]
    rate = s["parse_failure_rate"]
    if rate is not None:
        lines.append(
            (
                f"label parse failures: {s['parse_failures']}/{s['decoded']} ({100 * rate:.1f}%); "
                f"label method {s['label_method']}",
                "",
            )
        )
    if s["real_time_factor"] is not None:
        rtf = f"real-time factor {s['real_time_factor']:.3f} ({s['audio_seconds']:.1f} s of audio)"
        lines.append((rtf, ""))
    if s["failed"]:
        lines.append((f"{s['failed']} utterance(s) failed (listed in {out}/decode_summary.json):", "red"))
        lines += [(f"  {k}: {e}", "red") for k, e in list(s["errors"].items())[:10]]
    if s["missing"]:
        lines.append((f"{s['missing']} utterance(s) have no result", "red"))
    g = s.get("grounding")
    if g is not None:
        from sedtk.data.evidence import EVIDENCE_FILE

        rates = [
            f"{a} {100 * d['grounding_rate']:.0f}%"
            for a, d in g["attributes"].items()
            if d["grounding_rate"] is not None
        ]
        shown = ", ".join(rates) or "none checkable"
        path = f"{out}/{EVIDENCE_FILE}"
        lines.append((f"evidence: {path}; claims supported by the audio (grounding rate): {shown}", ""))
        if g["unvoiced_utterances"]:
            lines.append((f"evidence: {g['unvoiced_utterances']} utterance(s) have no voiced speech", ""))
    return lines
