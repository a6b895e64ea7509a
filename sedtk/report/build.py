"""``build_report``: decode dir (+ data, score, explain dirs, timeline) -> one static HTML file.

The page holds the per-utterance data as one inline JSON document; a small vanilla script draws
one page of utterance cards at a time (``page_size``), with a search box and filters, so a
5,000-utterance test set opens as fast as a 50-utterance one (``bench/bench_report.py``).  The
systems (score dir) and explanation (explain dir) panels are static HTML.  Nothing is fetched
from the network when the page is viewed; audio is embedded or linked (:mod:`sedtk.report.audio`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from sedtk.data.datadir import DataDir, DataDirError
from sedtk.data.emotions import concept_of
from sedtk.data.evidence import grounding_summary
from sedtk.errors import OptionError
from sedtk.explain.utterances import attribute_phrase
from sedtk.report import audio as audio_mod
from sedtk.report.inputs import (
    CONTRADICTED,
    SUPPORTED,
    UNCERTAIN,
    UNCHECKED,
    DecodeDir,
    ReportInputError,
    claims_of,
    read_decode_dir,
    read_explain_dir,
    read_score_dir,
    read_timeline,
)
from sedtk.report.page import (
    explain_section,
    grounding_table,
    kv_table,
    metrics_table,
    page,
    system_sections,
)
from sedtk.utils.io import atomic_write_text

Log = Callable[[str], None]
VERDICT_CODE = {SUPPORTED: "s", CONTRADICTED: "c", UNCERTAIN: "q", UNCHECKED: "u"}
#: One colour per emotion concept (:func:`sedtk.data.emotions.concept_of`), the same in every report.
CONCEPT_COLOURS = {
    "neutral": "#64748b", "happy": "#eab308", "excited": "#f97316", "angry": "#dc2626", "sad": "#2563eb",
    "frustrated": "#be185d", "surprised": "#06b6d4", "fearful": "#7c3aed", "disgusted": "#65a30d",
    "contempt": "#92400e", "other": "#94a3b8",
}  # fmt: skip
SPARE_COLOURS = ["#0d9488", "#9333ea", "#ea580c", "#4d7c0f", "#0369a1", "#a21caf", "#b45309", "#475569"]


def emotion_colours(labels: list[str]) -> dict[str, str]:
    """label -> colour: by the label's concept, else a spare colour in inventory order."""
    out, spare = {}, iter(SPARE_COLOURS * (1 + len(labels) // len(SPARE_COLOURS)))
    for lab in labels:
        c = concept_of(lab)
        out[lab] = CONCEPT_COLOURS.get(c) if c in CONCEPT_COLOURS else next(spare)
    return out


logger = logging.getLogger(__name__)


def mark_description(desc: str, claims: list[dict]) -> list[list]:
    """``desc`` cut into ``[text, claim index or -1]`` pieces, each claim's phrase its own piece.

    A claim's place is its ``span`` (character offsets) when given, else the first case-insensitive
    occurrence of its text (or of the caption phrase of its attribute and value) not already taken.
    """
    low = desc.lower()
    taken: list[tuple[int, int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e, _ in taken)

    for ci, c in enumerate(claims):
        sp = c.get("span")
        if sp and all(isinstance(x, int) for x in sp) and 0 <= sp[0] < sp[1] <= len(desc) and free(*sp):
            taken.append((sp[0], sp[1], ci))
            continue
        cands = [c.get("text") or ""]
        if c.get("attribute") and c.get("claim"):
            cands.append(
                attribute_phrase(c["attribute"], c["claim"]) if c["attribute"] != "gender" else c["claim"]
            )
        for cand in cands:
            cand = cand.strip().lower()
            if not cand:
                continue
            i = low.find(cand)
            while i >= 0 and not free(i, i + len(cand)):
                i = low.find(cand, i + 1)
            if i >= 0:
                taken.append((i, i + len(cand), ci))
                break
    pieces, pos = [], 0
    for s, e, ci in sorted(taken):
        if s > pos:
            pieces.append([desc[pos:s], -1])
        pieces.append([desc[s:e], ci])
        pos = e
    if pos < len(desc):
        pieces.append([desc[pos:], -1])
    return pieces


def _claims_json(claims: list[dict]) -> list[dict]:
    out = []
    for c in claims:
        d = {"a": c["attribute"], "x": c["claim"] or c["text"], "v": VERDICT_CODE[c["verdict"]]}
        for k, short in (("measured", "m"), ("bin", "b"), ("note", "n")):
            if c.get(k):
                d[short] = c[k]
        out.append(d)
    return out


def _correct(ref: str | None, hyp: str | None) -> bool | None:
    if ref is None or hyp is None:
        return None
    return hyp == ref or (concept_of(hyp) is not None and concept_of(hyp) == concept_of(ref))


def _audio_for(
    dd: DataDir | None, key: str, mode: str, codec: str, out_dir: Path
) -> tuple[str | None, str | None]:
    """(src, why not) of one utterance's player."""
    if mode == "none":
        return None, None
    if dd is None:
        return None, "no data dir: give --data to play the audio"
    try:
        u = dd.utterance(key)
    except (KeyError, DataDirError) as e:
        return None, f"audio not found in the data dir ({e})"
    if mode == "embed":
        try:
            return audio_mod.embed(u.wav, u.start, u.end, codec), None
        except Exception as e:  # AudioError, soundfile errors: the page still renders the rest
            return None, f"audio not embedded: {e}"
    src = audio_mod.link(u.wav, u.start, u.end, out_dir)
    return (
        (src, None) if src else (None, f"{Path(u.wav).suffix or 'this'} audio cannot be played by a browser")
    )


def build_report(
    decode: str | os.PathLike,
    out: str | os.PathLike,
    data: str | os.PathLike | None = None,
    score: str | os.PathLike | None = None,
    explain: str | os.PathLike | None = None,
    timeline: str | os.PathLike | None = None,
    audio: str = "auto",
    audio_codec: str = "opus",
    page_size: int = 50,
    title: str | None = None,
    log: Log | None = None,
) -> dict:
    """Write the report to ``out``; returns a summary (utterances, audio mode, bytes, seconds).

    ``log``: where the progress lines go; default the ``sedtk.report.build`` logger (warnings at
    WARNING level, the rest at INFO).
    """
    warn = log or logger.warning
    log = log or logger.info
    t0 = time.perf_counter()
    out = Path(out)
    if page_size < 1:
        raise OptionError(f"--page-size must be >= 1, got {page_size}")
    if audio_codec not in audio_mod.CODECS:
        raise OptionError(f"--audio-codec must be one of {', '.join(audio_mod.CODECS)}, got {audio_codec!r}")
    if decode is None and timeline is None:
        raise OptionError("give --decode DIR (a 'sedtk decode --out' dir), --timeline FILE, or both")
    dec = read_decode_dir(decode) if decode is not None else DecodeDir(None, {})
    data_path = Path(data) if data is not None else dec.data_path
    dd = None
    if data_path is not None:
        try:
            dd = DataDir.load(data_path)
        except DataDirError as e:
            raise ReportInputError(str(e)) from None
    sc = read_score_dir(score) if score is not None else None
    ex = read_explain_dir(explain) if explain is not None else None
    tl = read_timeline(timeline) if timeline is not None else None

    keys = sorted(dec.results)
    inv = list(dec.inventory) or [str(x) for x in (tl or {}).get("inventory") or []]
    for r in dec.results.values():
        for lab in r.posterior or {}:
            if lab not in inv:
                inv.append(lab)
    mode = audio_mod.resolve_mode(audio, len(keys))
    out.parent.mkdir(parents=True, exist_ok=True)

    utts, ev_records, stale = [], [], 0
    for k in keys:
        r = dec.results[k]
        u: dict = {"k": k}
        if r.duration is not None:
            u["d"] = round(r.duration, 2)
        if not r.ok:
            u["err"] = r.error
        if r.transcript is not None:
            u["t"] = r.transcript
        if r.emotion is not None:
            u["e"] = r.emotion
        if r.posterior:
            u["p"] = [round(float(r.posterior.get(lab, 0.0)), 4) for lab in inv]
        ev = dec.evidence.get(k)
        if isinstance(ev, dict) and ev.get("description") not in (None, r.description):
            ev, stale = None, stale + 1  # evidence of an earlier decode's description: its spans are wrong
        claims, note = claims_of(ev)
        if claims or note:
            ev_records.append(
                {"voiced": not (isinstance(ev, dict) and ev.get("voiced") is False), "claims": claims}
            )
        if r.description is not None:
            u["ds"] = mark_description(r.description, claims)
        if claims:
            u["c"] = _claims_json(claims)
        if note:
            u["en"] = note
        if dd is not None:
            for field, short in (("text", "rt"), ("utt2desc", "rd"), ("utt2emo", "re"), ("utt2spk", "spk")):
                v = dd.get(field, k)
                if v is not None:
                    u[short] = v
            attr = dd.get("utt2attr", k)
            if attr:
                from sedtk.data.datadir import parse_attr

                u["ra"] = parse_attr(attr)
            ok = _correct(u.get("re"), u.get("e"))
            if ok is not None:
                u["ok"] = ok
        utts.append(u)
    # Audio last, in threads (libsndfile's encoders release the GIL): Opus costs ~10 ms per utterance.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        players = pool.map(lambda k: _audio_for(dd, k, mode, audio_codec, out.parent), keys)
        for u, (src, why) in zip(utts, players, strict=True):
            if src:
                u["au"] = src
            elif why:
                u["an"] = why

    tl_mode = audio_mod.resolve_mode(audio, 0) if audio != "auto" else "auto"
    tl_json = _timeline_json(tl, inv, tl_mode, audio_codec, out.parent) if tl else None
    highlight = _this_system(sc, dec.path) if sc and dec.path else None
    grounding = grounding_summary(ev_records) if ev_records else None
    if stale:
        warn(f"warning: {stale} evidence records are of another description (rerun sedtk decode --evidence)")
    name = dec.path.name if dec.path else Path(str((tl or {}).get("audio") or timeline)).name
    title = title or f"sedtk report: {name}"
    header = _header(dec, data_path, data is None, score, explain, tl, timeline, mode, utts, stale)
    static = ""
    if sc is not None:
        static += (
            f'<section id="systems"><h2>Systems</h2>{metrics_table(sc, highlight)}'
            f"{system_sections(sc, highlight)}</section>"
        )
    if grounding:
        static += (
            '<section id="grounding"><h2>Evidence for the descriptions</h2><p class="note">claims of '
            "the generated descriptions of this decode checked against measurements of the audio "
            "(<code>sedtk decode --evidence</code>); grounding rate = supported / (supported + "
            f"contradicted).</p>{grounding_table(grounding)}</section>"
        )
    if ex is not None:
        static += explain_section(ex)
    labels = list(
        dict.fromkeys(
            [
                *inv,
                *(u["e"] for u in utts if "e" in u),
                *(u["re"] for u in utts if "re" in u),
                *(x["em"] for x in (tl_json or {}).get("segs", []) if "em" in x),
            ]
        )
    )
    payload = {
        "inventory": inv,
        "colours": emotion_colours(labels),
        "pageSize": page_size,
        "utts": utts,
        "timeline": tl_json,
    }
    html_text = page(title, header, static, payload)
    atomic_write_text(out, html_text)
    summary = {
        "out": str(out),
        "utterances": len(utts),
        "audio": mode,
        "audio_players": sum(1 for u in utts if "au" in u),
        "bytes": out.stat().st_size,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log(
        f"wrote {out} ({summary['bytes'] / 1e6:.2f} MB, {len(utts)} utterances, audio: {mode}) "
        f"in {summary['seconds']:.1f} s"
    )
    return summary


def _this_system(sc: dict, decode_dir: Path) -> str | None:
    """The score.json system whose hypothesis dir is this decode dir."""
    me = decode_dir.resolve()
    for s in sc["systems"]:
        for pair in s.get("pairs") or []:
            if len(pair) == 2 and Path(pair[1]).resolve() == me:
                return s.get("name")
    return None


def _missing_data(dec) -> str | None:
    named = (dec.config or {}).get("data")
    return f"none: {named} (decode_config.json) no longer exists; give --data" if named else None


def _header(dec, data_path, data_implicit, score, explain, tl, timeline, mode, utts, stale: int) -> str:
    s = dec.summary or {}
    n_ok = sum(1 for u in utts if "err" not in u)
    with_ref = [u["ok"] for u in utts if "ok" in u]
    acc = (
        f"{sum(with_ref)}/{len(with_ref)} ({100 * sum(with_ref) / len(with_ref):.1f}%)" if with_ref else None
    )
    rows = [
        ("decode dir", None if dec.path is None else str(dec.path)),
        (
            "reference data dir",
            _missing_data(dec)
            if data_path is None
            else f"{data_path}{' (from decode_config.json)' if data_implicit else ''}",
        ),
        ("score dir", None if score is None else str(score)),
        ("explain dir", None if explain is None else str(explain)),
        ("timeline", None if tl is None else f"{timeline} ({len(tl['segments'])} segments)"),
        ("utterances", f"{len(utts)} ({n_ok} decoded, {len(utts) - n_ok} failed)" if utts else None),
        ("emotion correct", acc),
        ("label method", s.get("label_method")),
        ("parse failures", s.get("parse_failures")),
        (
            "stale evidence",
            f"{stale} evidence record(s) of another description ignored (rerun decode --evidence)"
            if stale
            else None,
        ),
        ("real-time factor", s.get("real_time_factor")),
        (
            "audio",
            {
                "embed": "embedded in this file",
                "link": "linked by relative path (keep the report beside the audio)",
                "none": "not included",
            }[mode],
        ),
    ]
    return kv_table(rows, "kv summary")


def _timeline_json(tl: dict, inv: list[str], mode: str, codec: str, out_dir: Path) -> dict:
    segs = []
    for s in tl["segments"]:
        post = s.get("posterior")
        d = {"s": round(s["start"], 3), "e": round(s["end"], 3)}
        for field, short in (("transcript", "t"), ("text", "t"), ("description", "dd"), ("emotion", "em")):
            if s.get(field) is not None and short not in d:
                d[short] = str(s[field])
        if isinstance(post, dict):
            d["p"] = [[str(k), round(float(v), 4)] for k, v in post.items()]
        if s.get("error"):
            d["err"] = str(s["error"])
        claims, note = claims_of(s.get("evidence"))
        if d.get("dd") is not None:
            d["ds"] = mark_description(d.pop("dd"), claims)
        if claims:
            d["c"] = _claims_json(claims)
        if note:
            d["en"] = note
        segs.append(d)
    dur = tl.get("duration")
    dur = float(dur) if isinstance(dur, int | float) else max((s["e"] for s in segs), default=0.0)
    src, why = None, None
    path = tl.get("audio")
    if mode == "auto":
        mode = "embed" if dur <= audio_mod.AUTO_EMBED_SECONDS else "link"
    if mode != "none" and isinstance(path, str):
        if mode == "embed":
            try:
                src = audio_mod.embed(path, None, None, codec)
            except Exception as e:
                why = f"audio not embedded: {e}"
        else:
            src = audio_mod.link(path, None, None, out_dir)
            why = None if src else "this audio format cannot be played by a browser"
    elif mode != "none":
        why = "the timeline names no audio file"
    return {
        "duration": dur,
        "segs": segs,
        "au": src,
        "an": why,
        "name": Path(path).name if isinstance(path, str) else None,
        "summary": {k: v for k, v in (tl.get("summary") or {}).items() if isinstance(v, str | int | float)},
    }
