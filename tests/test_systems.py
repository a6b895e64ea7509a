"""The system graph (sedtk/systems.py) against the packaged paper configs: every config belongs to a
system, and every system decodes the columns its table row reports (issue 8 §5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sedtk import systems
from sedtk.config import PACKAGED_CONF, TASKS, load_config
from sedtk.models.prompt import label_scoring

PAPER = PACKAGED_CONF / "paper"
CONFIGS = sorted(p.stem for p in PAPER.glob("*.yaml") if p.stem != "common")


def test_every_packaged_config_is_in_the_graph() -> None:
    named = set()
    for s in systems.SYSTEMS.values():
        named.update(s.runs)
        named.update(s.copies)
    assert sorted(named) == CONFIGS  # nothing unlisted, nothing listed that does not exist


@pytest.mark.parametrize("name", list(systems.SYSTEMS))
def test_each_system_decodes_its_table_columns(name: str) -> None:
    s = systems.get(name)
    assert systems.missing_columns(s) == [], f"{name} reports {s.columns} but decodes {s.decode}"
    final = load_config(f"paper/{s.final}")
    assert final.model.kind == s.kind
    for task in s.decode:
        assert task in TASKS and task in final.prompt.instructions
    emotion = next(t for t in s.decode if t in ("ser_sed", "ser"))
    label_scoring(final.prompt.targets[emotion])  # the label posterior can be scored
    if s.kind == "ssl_ser":
        assert s.stage1 is None and set(s.decode) <= {"ser", "asr"}
    if s.stage1 is not None:
        first = load_config(f"paper/{s.stage1}")
        assert first.model == final.model or first.model.kind == final.model.kind
        for copy in s.copies:  # a system's own stage-1 file is the shared one's copy
            assert dataclasses.asdict(load_config(f"paper/{copy}")) == dataclasses.asdict(first)


def test_two_stage_ablation_decodes_asr_it_did_not_train_in_stage_2() -> None:
    """Tab. 3 Sys. 2 reports a WER although its stage 2 trains SER-SED only."""
    s = systems.get("tab3_sys2_two_stage")
    assert load_config(f"paper/{s.final}").train.tasks == ["ser_sed"]
    assert "asr" in s.decode


def test_ssl_baselines_run_on_their_own_upstreams() -> None:
    ups = {n: load_config(f"paper/{systems.get(n).final}").model.upstream for n in ("sys1", "sys2", "sys3")}
    assert ups == {
        "sys1": "facebook/hubert-large-ls960-ft",
        "sys2": "microsoft/wavlm-large",
        "sys3": "facebook/wav2vec2-large-960h-lv60-self",
    }
    assert [systems.get(n).upstream for n in ("sys1", "sys2", "sys3")] == ["hubert", "wavlm", "wav2vec2"]


def test_shell_and_table_output(capsys) -> None:
    assert systems.main(["shell"]) == 0
    out = capsys.readouterr().out
    assert "SEDTK_SYS_TASKS[tab3_sys2_two_stage]=ser_sed,asr" in out
    assert "SEDTK_SYS_STAGE1[sys5]=sys7_stage1" in out
    assert systems.main(["table"]) == 0 and "| sys1 |" in capsys.readouterr().out
    assert systems.main(["bogus"]) == 2
    with pytest.raises(KeyError, match="not a paper system"):
        systems.get("sys9")


def test_docs_mapping_names_every_final_config() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "paper_systems.md").read_text(encoding="utf-8")
    for s in systems.SYSTEMS.values():
        assert f"`{s.final}.yaml`" in doc, s.final
