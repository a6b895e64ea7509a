"""The four corpus recipes (egs/{iemocap,meld,speechcraft,emosec}/run.sh) through all their stages.

Each recipe runs on a tiny tree in the corpus's own release format (built with tests/data/fixtures.py)
with the tiny random models of ``sedtk model init-tiny``, one optimizer step per training run and the
CPU.  The recipe folders are copied beside a copy of tools/ and egs/db.sh, so that their outputs
(data/, exp/...) land in the test's temporary folder, exactly as they would in the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sedtk.data.datadir import DataDir, read_kaldi_map
from tests.data.fixtures import build_emosec, build_iemocap, kaldi_file, make_clip, meld_csv, write_wav

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
#: Small speech branches and one optimizer step: the recipes' stages, not the paper's training.
TINY_TRAIN = (
    "--set train.max_steps=1 --set train.epochs=1 --set train.batch_size=2 --set train.dev_max_utts=2 "
    "--set train.dev_max_new_tokens=8 --set model.dtype=float32 --set train.device=cpu "
    "--set data.num_workers=0 --set model.encoder_dim=16 --set model.latent_dim=8 --set model.adapter_dim=16"
)
DECODE = "--batch-size 4 --max-new-tokens 8"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny"
    subprocess.run([sys.executable, "-m", "sedtk.cli", "model", "init-tiny", str(out)], check=False, env=ENV)
    if not (out / "llm").is_dir():  # the package may have no __main__: use the console script
        subprocess.run(["sedtk", "model", "init-tiny", str(out)], check=True, env=ENV, capture_output=True)
    return out


def recipe_copy(root: Path, corpus: str) -> Path:
    """``root/egs/<corpus>`` with ``root/tools`` and ``root/egs/db.sh``, as in the checkout."""
    shutil.copytree(REPO / "tools", root / "tools")
    (root / "egs").mkdir()
    shutil.copy(REPO / "egs" / "db.sh", root / "egs" / "db.sh")
    shutil.copytree(REPO / "egs" / corpus, root / "egs" / corpus,
                    ignore=shutil.ignore_patterns("data", "exp", "dump", "README.md"))  # fmt: skip
    return root / "egs" / corpus


def run_recipe(recipe: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(["bash", str(recipe / "run.sh"), *args], cwd=recipe, capture_output=True, text=True,
                       env={**ENV, **env})  # fmt: skip
    assert r.returncode == 0, f"run.sh failed\n--- stdout\n{r.stdout[-6000:]}\n--- stderr\n{r.stderr[-6000:]}"
    return r


def common_args(models: Path, systems: str) -> list[str]:
    return ["--nj", "1", "--device", "cpu", "--hubert", str(models / "hubert"), "--llm", str(models / "llm"),
            "--systems", systems, "--train-extra", TINY_TRAIN, "--decode-opts", DECODE]  # fmt: skip


def check_decode(decode: Path, ref: Path, files: tuple[str, ...] = ("text", "utt2desc")) -> None:
    """Decode outputs of every test utterance: ``files`` are the tasks' outputs (text: ASR, utt2desc: SED)."""
    keys = set(DataDir.load(ref).utts)
    assert {json.loads(line)["key"] for line in (decode / "results.jsonl").read_text().splitlines()} == keys
    for name in files:
        assert set(read_kaldi_map(decode / name)) == keys, decode / name
    if (ref / "utt2emo").is_file():
        inventory = (ref / "emotions").read_text().split()
        assert set(read_kaldi_map(decode / "utt2emo").values()) <= set(inventory)


def check_score(score_dir: Path, systems: list[str], tasks: tuple[str, ...] = ("ua", "wer")) -> dict:
    score = json.loads((score_dir / "score.json").read_text())
    assert [s["name"] for s in score["systems"]] == systems
    for s in score["systems"]:
        for metric in tasks:
            assert s["metrics"][metric] is not None, (s["name"], metric)
    assert (score_dir / "RESULTS.md").read_text().count("| ") > 4
    return score


def test_iemocap_recipe(tmp_path: Path, tiny_models: Path) -> None:
    """Two sessions -> folds 1 and 2; fold 1 trained, decoded, scored per fold and pooled."""
    template = write_wav(tmp_path / "template.wav", seconds=1.2, freq=180.0)
    turns = []
    for s in (1, 2):
        for g in "FM":
            d = f"Ses0{s}{g}_impro01"
            for i, (who, lab) in enumerate(zip("FMFM", ["neu", "hap", "ang", "sad"], strict=True)):
                turns.append((f"{d}_{who}{i:03d}", lab, f"Hello there number {i}."))
            turns.append((f"{d}_F010", "xxx", "Hm."))
    src = build_iemocap(tmp_path / "corpus", turns, template_wav=template)
    recipe = recipe_copy(tmp_path / "checkout", "iemocap")
    # Sys. 7 and the SSL baseline Sys. 1 (Sys. 5 sharing Sys. 7's stage 1 is exercised by the demo test).
    args = common_args(tiny_models, "sys7 sys1") + ["--folds", "1"]
    r = run_recipe(recipe, {"IEMOCAP": str(src)}, *args)

    data = recipe / "data"
    assert (data / "all" / "utt2desc").is_file()
    assert sorted(p.name for p in data.glob("fold*")) == ["fold1", "fold2"]  # one fold per session present
    for split in ("train", "dev", "test"):  # descriptors copied into the folds
        fold = DataDir.load(data / "fold1" / split)
        assert fold.has("utt2desc") and fold.has("utt2attr")
    assert (recipe / "dump/hubert/all/meta.json").is_file()  # one dump serves every fold
    assert (recipe / "exp/fold1/sys7_stage1/checkpoints").is_dir()
    assert not (recipe / "exp/fold2").exists()  # --folds 1
    check_decode(recipe / "exp/fold1/sys7_stage2/decode_test", data / "fold1" / "test")
    # Sys. 1: one-stage SSL SER baseline on the same dump; emotion, posterior and transcript, no description
    assert not (recipe / "exp/fold1/sys1_hubert_stage1").exists()
    assert (recipe / "exp/fold1/sys1_hubert/config.yaml").read_text().count("kind: ssl_ser") == 1
    sys1 = recipe / "exp/fold1/sys1_hubert/decode_test"
    check_decode(sys1, data / "fold1" / "test", ("text", "utt2emo_post"))
    assert not (sys1 / "utt2desc").exists()
    check_score(recipe / "exp/score/fold1", ["sys7", "sys1"])
    check_score(recipe / "exp/score/pooled", ["sys7", "sys1"])
    assert (recipe / "exp/score/pooled/results.tex").is_file()
    assert "Stage 5" in r.stdout
    # no SpeechCraft model beside this recipe: the LLM system trains from scratch, loudly
    assert "WARNING: sys7_stage1 trains FROM SCRATCH" in r.stderr
    assert "sys1_hubert: SSL SER baseline" in r.stderr
    decode_cfg = json.loads((recipe / "exp/fold1/sys7_stage2/decode_test/decode_config.json").read_text())
    assert decode_cfg["tasks"] == ["ser_sed", "asr"]  # the columns of Sys. 7's table rows
    assert json.loads((sys1 / "decode_config.json").read_text())["tasks"] == ["ser", "asr"]


def test_meld_recipe(tmp_path: Path, tiny_models: Path) -> None:
    src = tmp_path / "MELD.Raw"
    rows = {
        "train": [(0, 0, "Oh my God!", "Rachel", "surprise"), (0, 1, "I'm fine, really.", "Ross", "neutral"),
                  (1, 0, "That's great!", "Monica", "joy"), (1, 1, "Get out.", "Joey", "anger")],
        "dev": [(0, 0, "No way.", "Chandler", "disgust"), (0, 1, "Okay.", "Phoebe", "neutral")],
        "test": [(0, 0, "I miss him.", "Rachel", "sadness"), (0, 1, "What?", "Ross", "fear")],
    }  # fmt: skip
    folders = {"train": "train/train_splits", "dev": "dev_splits_complete",
               "test": "output_repeated_splits_test"}  # fmt: skip
    for split, items in rows.items():
        meld_csv(src / f"{split}_sent_emo.csv", items)
        for i, (d, u, *_rest) in enumerate(items):
            make_clip(src / folders[split] / f"dia{d}_utt{u}.mp4", [0.6, 0.4], seconds=0.8 + 0.1 * i)
    recipe = recipe_copy(tmp_path / "checkout", "meld")
    # Online features here (the dump path is the IEMOCAP test's): stage 1 is skipped.
    # Its default --decode-nj 2: the test set decoded as 2 shards (jobs), merged by a third
    run_recipe(recipe, {"MELD": str(src)}, *common_args(tiny_models, "sys7"), "--online-feats", "true")

    assert DataDir.load(recipe / "data/test").emotions == \
        ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]  # fmt: skip
    assert (recipe / "data/train/utt2desc").is_file()
    assert not (recipe / "dump").exists()
    assert (recipe / "exp/sys7_stage1/checkpoints").is_dir()
    check_decode(recipe / "exp/sys7_stage2/decode_test", recipe / "data/test")
    for i in (1, 2):  # two shard jobs, each its own process and log, merged into one decode dir
        log = (recipe / f"exp/log/decode_sys7_stage2_test.shard.{i}.log").read_text()
        assert "# command: sedtk decode" in log and f"--shard {i}/2" in log
        assert f"shard {i}/2: 1 utterances, 0 failed" in log
    assert not (recipe / "exp/sys7_stage2/decode_test/parts").exists()
    check_score(recipe / "exp/score_test", ["sys7"])


def _split_ids(n: dict[str, int]) -> dict[str, list[str]]:
    """GigaSpeech-style recording ids that the SpeechCraft preparer puts in each split (1 % dev, 1 % test)."""
    from sedtk.data.prep.speechcraft import held_out_split

    ids: dict[str, list[str]] = {name: [] for name in n}
    i = 0
    while any(len(ids[name]) < k for name, k in n.items()):
        rec = f"POD{i:010d}"
        ids[held_out_split(rec, 1.0, 1.0)].append(rec)
        i += 1
    return {name: ids[name][:k] for name, k in n.items()}


@pytest.fixture(scope="module")
def speechcraft_run(tmp_path_factory, tiny_models: Path) -> Path:
    """The SpeechCraft recipe (Sys. 6, one stage) on 4 train, 2 dev, 2 test clips; its model serves EMOSEC."""
    root = tmp_path_factory.mktemp("speechcraft")
    ids = _split_ids({"train": 4, "dev": 2, "test": 2})
    labels, wavs, segments = {}, {}, {}
    emotions = ["Happy", "Sad", "Angry", "Neutral"]
    for i, rec in enumerate(ids["train"] + ids["dev"] + ids["test"]):
        wav = write_wav(root / "giga" / "audio" / f"{rec}.wav", seconds=1.5, freq=150.0 + 40 * i)
        wavs[rec] = str(wav)
        utt = f"{rec}_S0000001"
        segments[utt] = f"{rec} 0.00 1.40"
        labels[utt] = {
            "labels": f"age:Youth adult\tgender:{'male' if i % 2 else 'female'}\tpitch:high\tvolume:normal\t"
                      f"speed:fast\temotion:{emotions[i % 4]}\ttranscription: this is clip {i}",
            "text_style_target": f"The speaker speaks in high pitch and fast speed, clip {i}.",
        }  # fmt: skip
    kaldi_file(root / "giga" / "kaldi" / "wav.scp", wavs)
    kaldi_file(root / "giga" / "kaldi" / "segments", segments)
    (root / "speechcraft").mkdir()
    (root / "speechcraft" / "labels_GigaSpeech_0.json").write_text(json.dumps(labels, indent=4))
    recipe = recipe_copy(root / "checkout", "speechcraft")
    env = {"SPEECHCRAFT": str(root / "speechcraft"), "GIGASPEECH": str(root / "giga" / "kaldi")}
    # one process per run, one decode job (its 4-GPU default cannot split the tiny batch of 2)
    run_recipe(recipe, env, *common_args(tiny_models, "sys6"), "--ngpu", "1", "--decode-nj", "1")
    return recipe


def test_speechcraft_recipe(speechcraft_run: Path) -> None:
    recipe = speechcraft_run
    assert len(DataDir.load(recipe / "data/dev")) == len(DataDir.load(recipe / "data/test")) == 2
    assert not (recipe / "dump").exists()  # online features by default: stage 1 dumps nothing
    config = (recipe / "exp/sys6/config.yaml").read_text()
    assert "online_features: true" in config
    assert (recipe / "exp/sys6/checkpoints").is_dir()  # one-stage system: no stage-1 run
    assert not list((recipe / "exp").glob("*_stage1"))
    # the held-out test set is decoded and scored (dev chose the checkpoints)
    assert not (recipe / "exp/sys6/decode_dev").exists()
    check_decode(recipe / "exp/sys6/decode_test", recipe / "data/test", ("utt2desc",))  # Sys. 6: no ASR
    check_score(recipe / "exp/score_test", ["sys6"], ("ua", "bleu4", "rouge_l", "cider"))


def test_emosec_recipe(tmp_path: Path, speechcraft_run: Path) -> None:
    items = {f"tx_emotion_0020100{i:04d}": (f"一年又一年{i}", c) for i, c in
             enumerate(["悲伤逆流成河", "伤心难过，声音颤抖", "开心地笑着说"])}  # fmt: skip
    src = build_emosec(tmp_path / "secap", items, with_wav=items)
    recipe = recipe_copy(tmp_path / "checkout", "emosec")
    exp = speechcraft_run / "exp"
    run_recipe(recipe, {"EMOSEC": str(src)}, "--device", "cpu", "--models", f"sys6={exp / 'sys6'}",
               "--baselines", "", "--decode-opts", DECODE)  # fmt: skip
    assert len(DataDir.load(recipe / "data/test")) == 3
    check_decode(recipe / "exp/sys6/decode_test", recipe / "data/test", ("utt2desc",))
    score = check_score(recipe / "exp/score_test", ["sys6"], ("bleu4", "rouge_l", "cider"))
    assert "zh" in score["tokenisation"]  # Chinese captions: character tokens


def test_recipes_refuse_a_missing_corpus(tmp_path: Path) -> None:
    recipe = recipe_copy(tmp_path / "checkout", "iemocap")
    r = subprocess.run(["bash", str(recipe / "run.sh")], cwd=recipe, capture_output=True, text=True,
                       env={**ENV, "IEMOCAP": ""})  # fmt: skip
    assert r.returncode == 1
    assert "IEMOCAP is not set: edit egs/db.sh" in r.stderr
