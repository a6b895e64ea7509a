"""``score_systems`` and ``sedtk score`` end to end (no METEOR here; see test_caption.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.datadir import read_kaldi_map, write_kaldi_map
from sedtk.score import SystemSpec, score_systems
from sedtk.score.caption import spice_status
from sedtk.score.ser import INVALID
from sedtk.utils.io import atomic_write_text

INV = ["neu", "hap", "ang", "sad"]
EN_WORDS = (
    "the man woman speaks says voice high low pitch fast slow happy sad angry tone with and in a".split()
)
ZH_CHARS = list("男女声音高低语速快慢开心伤心生气平静地说话带着情绪")


def _sentence(rng: random.Random, lang: str, lo: int, hi: int) -> str:
    if lang == "zh":
        return "".join(rng.choice(ZH_CHARS) for _ in range(rng.randint(lo, hi))) + "。"
    return " ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."


def make_refs(root: Path, folds: int = 2, n: int = 30, lang: str = "en", seed: int = 0) -> list[Path]:
    """Reference data dirs (one per fold) with text, utt2emo, utt2desc and emotions."""
    rng = random.Random(seed)
    out = []
    for f in range(folds):
        d = root / f"ref{f}"
        keys = [f"f{f}_u{i:03d}" for i in range(n)]
        write_kaldi_map(d / "wav.scp", {k: f"wav/{k}.wav" for k in keys})
        write_kaldi_map(d / "text", {k: _sentence(rng, lang, 4, 8) for k in keys})
        write_kaldi_map(d / "utt2emo", {k: rng.choice(INV) for k in keys})
        write_kaldi_map(d / "utt2desc", {k: _sentence(rng, lang, 6, 12) for k in keys})
        atomic_write_text(d / "emotions", "".join(f"{e}\n" for e in INV))
        out.append(d)
    return out


def make_hyps(
    root: Path, refs: list[Path], name: str, acc: float, seed: int = 1, lang: str = "en"
) -> list[Path]:
    """Decode dirs mirroring ``refs``: each field kept with probability ``acc``, else corrupted."""
    rng = random.Random(seed)
    out = []
    for f, r in enumerate(refs):
        d = root / name / f"decode{f}"
        emo, text, desc = (read_kaldi_map(r / n) for n in ("utt2emo", "text", "utt2desc"))
        write_kaldi_map(
            d / "utt2emo",
            {k: v if rng.random() < acc else rng.choice([*INV, "<unk>"]) for k, v in emo.items()},
        )
        write_kaldi_map(
            d / "text",
            {k: (v if rng.random() < acc else _sentence(rng, lang, 4, 8)) for k, v in text.items()},
        )
        write_kaldi_map(
            d / "utt2desc",
            {k: v if rng.random() < acc else _sentence(rng, lang, 6, 12) for k, v in desc.items()},
        )
        out.append(d)
    return out


@pytest.fixture
def corpus(tmp_path):
    refs = make_refs(tmp_path)
    systems = {
        name: make_hyps(tmp_path, refs, name, acc, seed)
        for name, acc, seed in (("A", 0.3, 1), ("B", 0.9, 2), ("C", 0.35, 3))
    }
    return tmp_path, refs, systems


def _specs(refs, systems):
    return [SystemSpec(n, list(zip(refs, h, strict=True))) for n, h in systems.items()]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_score_systems_writes_every_output_with_library_numbers(corpus):
    root, refs, systems = corpus
    out = root / "out"
    res = score_systems(_specs(refs, systems), ["A", "C"], out, meteor=False, latex=True, jobs=1)
    assert {p.name for p in out.iterdir()} >= {
        "score.json", "per_utt.tsv", "RESULTS.md", "results.tex", "confusion_A.png", "confusion_B.png"
    }  # fmt: skip
    disk = json.loads(
        (out / "score.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in score.json")
    )
    assert disk == json.loads(json.dumps(res))
    keys = {
        "ua",
        "wa",
        "macro_f1",
        "weighted_f1",
        "wer",
        "cer",
        "bleu4",
        "meteor",
        "rouge_l",
        "cider",
        "spice",
        "attr_mean",  # null here: the references have no utt2attr (see test_attributes.py)
        *(f"attr_{a}" for a in ("gender", "pitch", "volume", "speed", "pitch_range", "emotion", "age")),
    }
    for s in disk["systems"]:
        assert set(s["metrics"]) == keys
        assert s["metrics"]["cer"] is None and s["metrics"]["meteor"] is None
        assert s["n"] == {"ser": 60, "asr": 60, "sed": 60}
    # pooled folds: UA equals sklearn on the concatenated folds (invalid labels mapped to one wrong class)
    y_true, y_pred = [], []
    for r, h in zip(refs, systems["B"], strict=True):
        ref, hyp = read_kaldi_map(r / "utt2emo"), read_kaldi_map(h / "utt2emo")
        y_true += [ref[k] for k in sorted(ref)]
        y_pred += [hyp[k] if hyp[k] in INV else INVALID for k in sorted(ref)]
    b = disk["systems"][1]
    assert b["metrics"]["ua"] == pytest.approx(100 * balanced_accuracy_score(y_true, y_pred))
    # every system against every baseline but itself, on every per-utterance metric
    tests = {(t["system"], t["baseline"], t["metric"]) for t in disk["tests"]}
    metrics = {"ua", "wa", "wer", "bleu4", "rouge_l", "cider"}
    expect = {(s, bl, m) for s in "ABC" for bl in "AC" if s != bl for m in metrics}
    assert tests == expect
    sig = {(t["system"], t["baseline"], t["metric"]) for t in disk["tests"] if t["significant"]}
    assert ("B", "A", "ua") in sig and ("B", "C", "wer") in sig and ("A", "C", "ua") not in sig
    for t in disk["tests"]:
        assert t["n"] == 60 and (t["p"] is None or t["significant"] == (t["p"] < 0.05))
    # per-utterance table: the test units average back to the corpus numbers
    tab = pd.read_csv(out / "per_utt.tsv", sep="\t")
    rows = tab[tab.system == "B"]
    assert len(rows) == 60 and rows.ua.mean() == pytest.approx(b["metrics"]["ua"])
    assert 100 * rows.wer_errors.sum() / rows.wer_ref_len.sum() == pytest.approx(b["metrics"]["wer"])
    assert rows.rouge_l.mean() == pytest.approx(b["metrics"]["rouge_l"])
    assert rows.cider.mean() == pytest.approx(b["metrics"]["cider"])
    # RESULTS.md: paper layout, markers per baseline, legend
    md = (out / "RESULTS.md").read_text()
    assert "| ID | System | UA% ↑ | WA% ↑ | WER% ↓ | B@4 ↑ | R ↑ | C ↑ |" in md
    row_b = next(line for line in md.splitlines() if line.startswith("| 2 | B |"))
    assert f"{b['metrics']['ua']:.1f}\\*†" in row_b
    for text in (
        "`*` over **A** (ID 1)",
        "`†` over **C** (ID 3)",
        "ttest_rel",
        "p < 0.05",
        "PTBTokenizer",
        "RemovePunctuation",
        "SPICE",
    ):
        assert text in md
    tex = (out / "results.tex").read_text()
    assert r"\ast\dagger" in tex and r"\toprule" in tex


def test_spice_is_null_with_a_reason_when_its_jars_are_absent(corpus, tmp_path):
    ok, reason = spice_status(tmp_path)
    assert not ok and "stanford-corenlp-3.6.0.jar" in reason and "install_spice.sh" in reason
    for jar in ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar"):
        (tmp_path / jar).write_bytes(b"")
    assert spice_status(tmp_path)[0]
    root, refs, systems = corpus
    if not spice_status()[0]:
        res = score_systems(_specs(refs, systems)[:1], [], root / "o", meteor=False, jobs=1)
        assert res["systems"][0]["metrics"]["spice"] is None
        assert res["spice"]["available"] is False and "missing" in res["spice"]["reason"]
        assert res["systems"][0]["metrics"]["bleu4"] is not None


def test_every_reference_utterance_is_scored_a_missing_hypothesis_as_wrong(corpus):
    """Issue 14 §1: a missing or failed hypothesis counts as wrong, is counted and reported."""
    root, refs, systems = corpus
    dec = systems["B"][1]
    emo, text, desc = (read_kaldi_map(dec / n) for n in ("utt2emo", "text", "utt2desc"))
    gone = ["f1_u003", "f1_u007"]
    for m, name in ((emo, "utt2emo"), (text, "text"), (desc, "utt2desc")):
        for k in gone:
            del m[k]
        write_kaldi_map(dec / name, m)
    (dec / "results.jsonl").write_text(  # the decode's own record of why one failed
        '{"key": "f1_u003", "error": "utterance f1_u003: unreadable or corrupt audio"}\n'
    )
    write_kaldi_map(dec / "utt2emo", {**emo, "zz_extra": "neu"})
    res = score_systems(_specs(refs, systems), ["A"], root / "o", meteor=False, jobs=1)
    s = next(x for x in res["systems"] if x["name"] == "B")
    assert s["n"] == {"ser": 60, "asr": 60, "sed": 60}  # every reference utterance, pooled over 2 folds
    assert (
        s["missing"] == {"ser": 2, "asr": 2, "sed": 2} and s["failed"]["ser"] == 1 and s["extra"]["ser"] == 1
    )
    assert s["missing_keys"]["ser"] == gone
    ref = {**read_kaldi_map(refs[0] / "utt2emo"), **read_kaldi_map(refs[1] / "utt2emo")}
    hyp = {**read_kaldi_map(systems["B"][0] / "utt2emo"), **emo}
    wa = 100 * sum(hyp.get(k) == v for k, v in ref.items()) / 60  # the two missing ones wrong
    assert s["metrics"]["wa"] == pytest.approx(wa)
    refs_words = sum(len(read_kaldi_map(refs[1] / "text")[k].split()) for k in gone)
    assert s["asr"]["deletions"] >= refs_words  # their reference words all deleted
    tests = [t for t in res["tests"] if t["system"] == "B" and t["metric"] == "ua"]
    assert tests and tests[0]["n"] == 60  # paired with the baseline on every utterance
    warned = [w for w in res["warnings"] if "scored as wrong" in w]
    assert any("2 of 30 reference utterances have no hypothesis" in w and "1 failed to decode" in w
               and "unreadable or corrupt audio" in w for w in warned)  # fmt: skip
    md = (root / "o" / "RESULTS.md").read_text()
    assert "| 2 | B | 60 | 60 | 60 | 6 | 3 | 1 |" in md  # missing over the 3 tasks, failed, extra
    assert "one without a hypothesis (its decode failed, or it is absent) counts as wrong" in md
    # --max-missing: a limit when asked
    with pytest.raises(ValueError, match=r"decode1/utt2emo: 2 of the 30 .*first: f1_u003, f1_u007"):
        score_systems(_specs(refs, systems), ["A"], root / "o1", meteor=False, jobs=1, max_missing=1)
    # a hypothesis dir holding none of the references' keys is the wrong dir, not 30 wrong answers
    write_kaldi_map(dec / "utt2emo", {"zz_extra": "neu"})
    with pytest.raises(ValueError, match=r"decode1/utt2emo: none of the 30 utterances of .*ref1/utt2emo"):
        score_systems(_specs(refs, systems)[1:2], [], root / "o2", meteor=False, jobs=1)


def test_bad_inputs_are_clear_errors(corpus):
    root, refs, systems = corpus
    specs = _specs(refs, systems)
    emo = read_kaldi_map(refs[0] / "utt2emo")
    emo["f0_u001"] = "bored"
    write_kaldi_map(refs[0] / "utt2emo", emo)
    with pytest.raises(ValueError, match=r"ref0/utt2emo: label 'bored' of 'f0_u001'"):
        score_systems(specs, [], root / "o", meteor=False, jobs=1)
    emo["f0_u001"] = "neu"
    write_kaldi_map(refs[0] / "utt2emo", emo)
    with pytest.raises(ValueError, match="baseline 'X' is not one of the systems"):
        score_systems(specs, ["X"], root / "o", meteor=False)
    with pytest.raises(ValueError, match="unique"):
        score_systems([specs[0], specs[0]], [], root / "o", meteor=False)
    with pytest.raises(FileNotFoundError, match="nowhere: hypothesis directory not found"):
        score_systems([SystemSpec("Z", [(refs[0], root / "nowhere")])], [], root / "o", meteor=False)
    (systems["C"][0] / "text").unlink()
    with pytest.raises(FileNotFoundError, match=r"C/decode0/text not found although other folds have text"):
        score_systems(specs, [], root / "o", meteor=False, jobs=1)


def test_a_system_without_captions_is_scored_on_the_rest(corpus):
    root, refs, systems = corpus
    for d in systems["C"]:
        (d / "utt2desc").unlink()
    res = score_systems(_specs(refs, systems), ["C"], root / "o", meteor=False, jobs=1)
    c = res["systems"][2]
    assert c["metrics"]["bleu4"] is None and c["metrics"]["ua"] is not None and c["n"]["sed"] is None
    assert {t["metric"] for t in res["tests"]} == {"ua", "wa", "wer"}


def test_chinese_is_detected_and_scored_by_characters(tmp_path):
    refs = make_refs(tmp_path, folds=1, n=25, lang="zh")
    systems = {
        "A": make_hyps(tmp_path, refs, "A", 0.3, lang="zh"),
        "B": make_hyps(tmp_path, refs, "B", 0.95, 2, "zh"),
    }
    res = score_systems(_specs(refs, systems), ["A"], tmp_path / "o", meteor=False, jobs=2, bootstrap=50)
    b = res["systems"][1]
    assert b["metrics"]["wer"] is None and b["metrics"]["cer"] is not None
    assert b["asr"]["lang"] == "zh" and b["sed"]["lang"] == "zh"
    assert "character level" in res["tokenisation"]["zh"]
    assert any(t["metric"] == "cer" and t["significant"] for t in res["tests"])
    assert all(t["ci_low"] is not None for t in res["tests"])
    md = (tmp_path / "o" / "RESULTS.md").read_text()
    assert "CER% ↓" in md and "Caption tokenisation (zh)" in md


def test_cli_parses_systems_and_reports_errors(corpus):
    root, refs, systems = corpus
    runner = CliRunner()
    args = ["score", "--ref", str(refs[0]), "--ref", str(refs[1]), "--out", str(root / "cli"), "--no-meteor"]
    for name, dirs in systems.items():
        args += ["--hyp", f"{name}=" + ",".join(map(str, dirs))]
    r = runner.invoke(app, [*args, "--baseline", "A", "--jobs", "1", "--latex"])
    assert r.exit_code == 0, r.output
    assert "UA% ↑" in r.output and "* > A" in r.output
    res = json.loads((root / "cli" / "score.json").read_text())
    assert [s["name"] for s in res["systems"]] == ["A", "B", "C"]
    assert res["systems"][1]["pairs"] == [
        [str(refs[0]), str(systems["B"][0])],
        [str(refs[1]), str(systems["B"][1])],
    ]
    assert (root / "cli" / "results.tex").exists()
    bad = runner.invoke(
        app,
        [
            "score",
            "--ref",
            str(refs[0]),
            "--ref",
            str(refs[1]),
            "--hyp",
            f"A={systems['A'][0]}",
            "--out",
            str(root / "x"),
        ],
    )
    assert bad.exit_code == 1 and "1 decode dir(s) for 2 --ref dir(s)" in bad.output
    bad = runner.invoke(app, [*args, "--baseline", "nope"])
    assert bad.exit_code == 1 and "baseline 'nope'" in bad.output


def test_hyp_option_grammar():
    from sedtk.cli.score import parse_hyp

    assert parse_hyp("sys7=exp/a/decode_f1,exp/a/decode_f2", 2) == (
        "sys7",
        [Path("exp/a/decode_f1"), Path("exp/a/decode_f2")],
    )
    assert parse_hyp("exp/sys4/decode_test/", 1) == ("decode_test", [Path("exp/sys4/decode_test/")])
    with pytest.raises(ValueError, match="expected NAME=DIR"):
        parse_hyp("sys=", 1)
