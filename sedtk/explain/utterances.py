"""Per-utterance pairing of reference and predicted descriptors (the paper's explainability, Sec. 1).

For every utterance of a reference data dir that a decode dir has a result for: the reference and
predicted emotion (with the predicted label's posterior), the reference description (``utt2desc``)
and attributes (``utt2attr``) beside the generated description, and whether the generated description
names each reference attribute with the same value.

Attribute agreement reads the attributes back from the generated text with the caption parser of
:mod:`sedtk.data.attributes` (synonyms, negations and Chinese keywords included: "speaks quickly"
is speed=fast, "not loud" is no volume claim): the generated text *agrees* when it names the
reference value, *disagrees* when it names another value, and is *silent* when it names none (or
only negated or conflicting ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.data.attributes import STYLE_PHRASES, normalize_attributes, parse_description
from sedtk.data.datadir import DataDir, parse_attr, read_kaldi_map
from sedtk.data.emotions import concept_of
from sedtk.errors import InputError

#: Attributes whose value is read back from generated text (SpeechCraft's style attributes + gender).
CHECKED_ATTRIBUTES = (*STYLE_PHRASES, "pitch_range", "gender")
AGREE, DISAGREE, SILENT = "agree", "disagree", "silent"


def attribute_phrase(name: str, value: str) -> str:
    """How a caption names an attribute value (``pitch=high`` -> ``"high pitch"``)."""
    value = value.strip().lower()
    return STYLE_PHRASES[name].format(value) if name in STYLE_PHRASES else value


def mentioned_value(text: str, name: str, values: list[str] | None = None) -> str | None:
    """The value of attribute ``name`` that ``text`` names (:func:`parse_description`), or None.

    ``values`` (optional) restricts the answer to the values a reference data dir uses.
    """
    said = parse_description(text).get(name)
    return said if values is None or said in values else None


@dataclass
class UttRow:
    key: str
    ref_emotion: str | None
    hyp_emotion: str | None
    hyp_probability: float | None
    emotion_correct: bool | None
    ref_description: str | None
    hyp_description: str | None
    ref_text: str | None
    hyp_text: str | None
    attributes: dict[str, str] = field(default_factory=dict)  # reference attributes
    agreement: dict[str, str] = field(default_factory=dict)  # attribute -> agree/disagree/silent


def _posteriors(decode: Path) -> dict[str, dict[str, float]]:
    f = decode / "utt2emo_post"
    if not f.exists():
        return {}
    out = {}
    for k, v in read_kaldi_map(f).items():
        out[k] = {lab: float(p) for lab, p in (item.rsplit(":", 1) for item in v.split())}
    return out


def _maybe(path: Path) -> dict[str, str]:
    return read_kaldi_map(path) if path.exists() else {}


def pair_utterances(data: DataDir, decode_dir: str | Path) -> list[UttRow]:
    """Rows for the utterances of ``data`` that the decode dir has any output for (sorted by key)."""
    decode = Path(decode_dir)
    if not decode.is_dir():
        raise FileNotFoundError(f"{decode}: decode dir not found")
    hyp_emo, hyp_desc, hyp_text = (_maybe(decode / n) for n in ("utt2emo", "utt2desc", "text"))
    if not (hyp_emo or hyp_desc or hyp_text):
        raise InputError(f"{decode}: no utt2emo, utt2desc or text (is it a 'sedtk decode --out' dir?)")
    post = _posteriors(decode)
    attrs = {k: parse_attr(v) for k, v in data.maps.get("utt2attr", {}).items()}
    rows = []
    decoded = set(hyp_emo) | set(hyp_desc) | set(hyp_text)
    for key in data.utts:
        if key not in decoded:
            continue
        ref_e, hyp_e = data.get("utt2emo", key), hyp_emo.get(key)
        correct = None
        if ref_e is not None and hyp_e is not None:
            correct = hyp_e == ref_e or (
                concept_of(hyp_e) is not None and concept_of(hyp_e) == concept_of(ref_e)
            )
        a = attrs.get(key, {})
        ref = normalize_attributes(a)
        agreement = {}
        desc = hyp_desc.get(key)
        if desc is not None:
            said_all = parse_description(desc)
            for name in CHECKED_ATTRIBUTES:
                if name not in ref:
                    continue
                said = said_all.get(name)
                agreement[name] = SILENT if said is None else (AGREE if said == ref[name] else DISAGREE)
        rows.append(
            UttRow(
                key=key,
                ref_emotion=ref_e,
                hyp_emotion=hyp_e,
                hyp_probability=post.get(key, {}).get(hyp_e) if hyp_e else None,
                emotion_correct=correct,
                ref_description=data.get("utt2desc", key),
                hyp_description=desc,
                ref_text=data.get("text", key),
                hyp_text=hyp_text.get(key),
                attributes=a,
                agreement=agreement,
            )
        )
    return rows


def agreement_summary(rows: list[UttRow]) -> dict[str, dict[str, float | int]]:
    """Per attribute: agree / disagree / silent counts and the agreement rate among mentions."""
    out: dict[str, dict[str, float | int]] = {}
    for r in rows:
        for name, verdict in r.agreement.items():
            d = out.setdefault(name, {AGREE: 0, DISAGREE: 0, SILENT: 0})
            d[verdict] += 1
    for d in out.values():
        said = d[AGREE] + d[DISAGREE]
        d["agreement_when_mentioned"] = round(d[AGREE] / said, 4) if said else None
    return out


def emotion_summary(rows: list[UttRow]) -> dict:
    scored = [r for r in rows if r.emotion_correct is not None]
    confusion: dict[str, dict[str, int]] = {}
    for r in scored:
        confusion.setdefault(r.ref_emotion, {}).setdefault(r.hyp_emotion, 0)
        confusion[r.ref_emotion][r.hyp_emotion] += 1
    n_ok = sum(1 for r in scored if r.emotion_correct)
    return {
        "utterances": len(scored),
        "correct": n_ok,
        "accuracy": round(n_ok / len(scored), 4) if scored else None,
        "confusion": confusion,
    }


def _cell(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.3f}"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return " ".join(str(x).split()).replace("\t", " ")


def rows_tsv(rows: list[UttRow]) -> str:
    head = ["utt", "ref_emotion", "hyp_emotion", "hyp_prob", "emotion_correct", "ref_description",
            "hyp_description", "ref_attributes", "attribute_agreement", "ref_text", "hyp_text"]  # fmt: skip
    lines = ["\t".join(head)]
    for r in rows:
        lines.append(
            "\t".join(
                _cell(x)
                for x in (
                    r.key,
                    r.ref_emotion,
                    r.hyp_emotion,
                    r.hyp_probability,
                    r.emotion_correct,
                    r.ref_description,
                    r.hyp_description,
                    _attrs(r.attributes),
                    _agree(r.agreement),
                    r.ref_text,
                    r.hyp_text,
                )  # fmt: skip
            )
        )
    return "\n".join(lines) + "\n"


def _attrs(a: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in a.items())


def _agree(a: Mapping[str, str]) -> str:
    return " ".join(f"{k}:{v}" for k, v in a.items())


def _md(x) -> str:
    return _cell(x).replace("|", "\\|")


def rows_markdown(rows: list[UttRow], max_rows: int = 200) -> str:
    lines = [
        "| utt | emotion ref → hyp (p) | reference description | generated description | attributes |",
        "|---|---|---|---|---|",
    ]
    marks = {AGREE: "✓", DISAGREE: "✗", SILENT: "–"}
    for r in rows[:max_rows]:
        emo = f"{_md(r.ref_emotion) or '?'} → {_md(r.hyp_emotion) or '?'}"
        if r.hyp_probability is not None:
            emo += f" ({r.hyp_probability:.2f})"
        if r.emotion_correct is not None:
            emo += " ✓" if r.emotion_correct else " ✗"
        att = ", ".join(f"{k}={_md(r.attributes.get(k))} {marks[v]}" for k, v in r.agreement.items())
        lines.append(
            f"| {_md(r.key)} | {emo} | {_md(r.ref_description)} | {_md(r.hyp_description)} | {att} |"
        )
    if len(rows) > max_rows:
        lines.append(f"\n({len(rows) - max_rows} more rows in utterances.tsv)")
    return "\n".join(lines) + "\n"
