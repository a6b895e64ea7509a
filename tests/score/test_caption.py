"""Caption metrics equal pycocoevalcap's scorers called directly; METEOR runs in one JVM per module."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from sedtk.data.datadir import read_kaldi_map, write_kaldi_map
from sedtk.score import SystemSpec, score_systems
from sedtk.score.caption import char_tokenise, ptb_tokenise, score_caption_sets
from sedtk.score.meteor import MeteorError, MeteorScorer
from tests.score.test_systems import make_hyps, make_refs

REFS = [
    "A young woman says 'I can't believe it!' in a high-pitched, excited voice.",
    "The man speaks slowly and quietly, sounding sad.",
    'An old man shouts angrily at a fast pace, stressing the word "never".',
    "A café owner, naïve and cheerful, greets everyone.",
    "Calm female voice; neutral emotion.",
]
HYPS = [
    "A young woman says she can't believe it in an excited high voice.",
    "A man speaks slowly, sounding sad and quiet.",
    "",
    "A cheerful café owner greets everyone.",
    "The woman sounds calm and neutral|||really.",
]
KEYS = [f"u{i}" for i in range(len(REFS))]


@pytest.fixture(scope="module")
def meteor():
    with MeteorScorer() as m:
        yield m


class _PycocoMeteorOnOurJvm(Meteor):
    """pycocoevalcap's own Meteor.compute_score, talking to an already running JVM (saves a second JVM)."""

    def __init__(self, proc):
        self.meteor_p = proc
        self.lock = threading.Lock()

    def __del__(self):  # the JVM belongs to the MeteorScorer fixture
        pass


@pytest.fixture(scope="module")
def pycoco_meteor(meteor):
    return _PycocoMeteorOnOurJvm(meteor._proc)


def test_meteor_runs_pycocoevalcaps_command(monkeypatch):
    """Same jar, arguments and working dir as pycocoevalcap's Meteor (so sharing a JVM here is fair)."""
    calls = []

    class FakePopen:
        def __init__(self, cmd, cwd=None, **kw):
            calls.append((cmd, Path(cwd)))

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    Meteor.__init__(object.__new__(_PycocoMeteorOnOurJvm))
    ours = MeteorScorer()
    ours._proc = None  # nothing was started
    (theirs, their_cwd), (cmd, cwd) = calls
    assert cmd[:3] == theirs[:3] and cmd[4:] == theirs[4:]
    assert Path(cmd[3]) == their_cwd / theirs[3] and cwd == their_cwd


def test_ptb_tokenisation_equals_pycocoevalcap():
    ours = ptb_tokenise(REFS + HYPS)
    theirs = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(REFS + HYPS)})
    assert ours == [theirs[i][0] for i in range(len(REFS + HYPS))]
    assert ours[3] == "a café owner naïve and cheerful greets everyone"
    assert ours[len(REFS) + 2] == ""


def test_chinese_character_tokenisation():
    assert char_tokenise("女声，语速较快！Happy 25岁。") == "女 声 语 速 较 快 happy 25 岁"
    assert char_tokenise("  ") == ""


def test_scores_equal_pycocoevalcap_scorers(meteor, pycoco_meteor):
    refs, hyps = ptb_tokenise(REFS), ptb_tokenise(HYPS)
    gts, res = (
        {k: [r] for k, r in zip(KEYS, refs, strict=True)},
        {k: [h] for k, h in zip(KEYS, hyps, strict=True)},
    )
    (cs,) = score_caption_sets([(KEYS, refs, hyps)], meteor=meteor, jobs=1)
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    expected = {
        "bleu4": (bleu[3], bleu_per[3]),
        "meteor": pycoco_meteor.compute_score(gts, res),
        "rouge_l": Rouge().compute_score(gts, res),
        "cider": Cider().compute_score(gts, res),
    }
    for metric, (corpus, per) in expected.items():
        assert cs.metrics[metric] == pytest.approx(100 * corpus, rel=1e-12, abs=1e-12), metric
        assert cs.per_utt[metric].tolist() == pytest.approx([100 * p for p in per], rel=1e-12, abs=1e-12), (
            metric
        )
    assert cs.metrics["spice"] is None
    assert 0 < cs.metrics["meteor"] < 100 and cs.per_utt["meteor"][2] == 0.0


def test_worker_processes_give_the_same_numbers(meteor):
    refs, hyps = ptb_tokenise(REFS), ptb_tokenise(HYPS)
    sets = [(KEYS, refs, hyps), (KEYS, refs, refs)]
    serial = score_caption_sets(sets, meteor=None, jobs=1)
    parallel = score_caption_sets(sets, meteor=None, jobs=2)
    for a, b in zip(serial, parallel, strict=True):
        assert a.metrics == b.metrics
        assert all((a.per_utt[m] == b.per_utt[m]).all() for m in a.per_utt)
    assert serial[1].metrics["rouge_l"] == pytest.approx(100)


def test_meteor_reuses_one_jvm_for_batches_and_chinese(meteor, pycoco_meteor):
    gts = {"a": ["高 兴 的 女 声"], "b": ["the man speaks loudly"], "c": ["愤 怒"]}
    res = {"a": ["悲 伤 的 男 声"], "b": ["a man speaks quietly"], "c": ["高 兴"]}
    pid = meteor._proc.pid
    for _ in range(2):
        assert meteor.compute_score(gts, res) == pycoco_meteor.compute_score(gts, res)
    assert meteor._proc.pid == pid
    assert meteor.compute_score(gts, res)[1][0] == pytest.approx(pycoco_meteor.compute_score(gts, res)[1][0])
    with pytest.raises(ValueError, match="different keys"):
        meteor.compute_score(gts, {"a": ["x"]})


def test_a_dead_meteor_jvm_is_an_error_not_a_hang():
    m = MeteorScorer()
    m._proc.kill()
    m._proc.wait()
    with pytest.raises(MeteorError, match="not running"):
        m.compute_score({"a": ["x"]}, {"a": ["x"]})
    m.close()


def test_score_systems_with_meteor_matches_direct_scoring(tmp_path, meteor, pycoco_meteor):
    refs = make_refs(tmp_path, folds=2, n=15)
    systems = {"A": make_hyps(tmp_path, refs, "A", 0.2), "B": make_hyps(tmp_path, refs, "B", 0.9, seed=2)}
    # PTBTokenizer reads "a." as an abbreviation or not depending on the NEXT line, so the order in
    # which captions are tokenised matters: sedtk must tokenise as COCOEvalCap does.
    for d in [*refs, *systems["B"]]:
        m = read_kaldi_map(d / "utt2desc")
        write_kaldi_map(
            d / "utt2desc", {k: v[:-1] + " a." if i % 2 else v for i, (k, v) in enumerate(m.items())}
        )
    specs = [SystemSpec(n, list(zip(refs, h, strict=True))) for n, h in systems.items()]
    res = score_systems(specs, ["A"], tmp_path / "out", meteor=meteor, jobs=1)
    ref, hyp = {}, {}
    for r, h in zip(refs, systems["B"], strict=True):
        ref.update(read_kaldi_map(r / "utt2desc"))
        hyp.update(read_kaldi_map(h / "utt2desc"))
    keys = sorted(ref)
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": ref[k]}] for k in keys})
    hy = tok.tokenize({k: [{"caption": hyp[k]}] for k in keys})
    b = res["systems"][1]["metrics"]
    assert b["meteor"] == pytest.approx(100 * pycoco_meteor.compute_score(gts, hy)[0])
    assert b["cider"] == pytest.approx(100 * Cider().compute_score(gts, hy)[0])
    assert b["bleu4"] == pytest.approx(100 * Bleu(4).compute_score(gts, hy, verbose=0)[0][3])
    sig = {t["metric"] for t in res["tests"] if t["significant"]}
    assert "meteor" in sig and "cider" in sig
    disk = json.loads((tmp_path / "out" / "score.json").read_text())
    assert disk["systems"][1]["metrics"]["meteor"] == pytest.approx(b["meteor"])
    assert "| M ↑ |" in (tmp_path / "out" / "RESULTS.md").read_text()
