"""egs/emobox/run.sh --corpus NAME, all stages, on a made-up EmoBox corpus (tiny models, CPU)."""

from __future__ import annotations

import json

from sedtk.data.datadir import DataDir
from tests.data.fixtures import build_emobox
from tests.models.test_sed_model import shared_assets
from tests.recipes.test_corpus_recipes import DECODE, TINY_TRAIN, check_decode, recipe_copy, run_recipe


def test_emobox_recipe_end_to_end(tmp_path):
    tiny = shared_assets()  # the session's tiny models (no second init-tiny)
    meta, audio = build_emobox(tmp_path / "corpus", n_per_label=2, folds=2, seconds=0.4)
    recipe = recipe_copy(tmp_path / "checkout", "emobox")
    env = {"EMOBOX_DATA": str(meta.parent), "EMOBOX_AUDIO": str(audio)}
    args = ["--corpus", "toy", "--folds", "1", "--nj", "1", "--device", "cpu", "--init", "none",
            "--hubert", str(tiny.upstream), "--llm", str(tiny.llm),
            "--train-extra", TINY_TRAIN, "--decode-opts", DECODE]  # fmt: skip
    r = run_recipe(recipe, env, *args)
    assert "no stage-1 ASR run" in r.stdout + r.stderr
    data = recipe / "data" / "toy"
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("fold")) == ["fold1", "fold2"]
    test = data / "fold1" / "test"
    assert DataDir.load(test).emotions == ["neutral", "happy", "angry"]
    assert set(DataDir.load(test).maps["utt2desc"]) == set(DataDir.load(test).utts)  # descriptors copied
    for sys, files in (("llm", ("utt2desc", "utt2emo")), ("ssl", ("utt2emo",))):
        check_decode(recipe / "exp" / "toy" / "fold1" / sys / "decode_test", test, files)
    score = json.loads((recipe / "exp" / "toy" / "score" / "score.json").read_text())
    assert [s["name"] for s in score["systems"]] == ["llm", "ssl"]
    for s in score["systems"]:
        assert len(s["emobox"]["folds"]) == 1 and s["emobox"]["mean"]["ua"] == s["emobox"]["folds"][0]["ua"]
    assert "EmoBox leaderboard view" in (recipe / "exp" / "toy" / "score" / "RESULTS.md").read_text()
    again = run_recipe(recipe, env, *args)  # every step done: nothing is redone
    ran = [line for line in again.stdout.splitlines() if " run: " in line]
    assert again.stdout.count(" skip ") == 2 and not ran, ran  # stage 0's two steps
    assert "6 of 6 job(s) done before" in again.stdout and "to run" not in again.stdout  # the plan of 1-5
