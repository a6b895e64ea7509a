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


def _finish(sc: Path, *finals: str) -> None:
    for f in finals:
        (sc / f).mkdir(parents=True, exist_ok=True)
        (sc / f / ".done").write_text("x\n")


@pytest.mark.parametrize("name", list(systems.SYSTEMS))
def test_each_system_starts_from_the_speechcraft_run_of_the_same_system(name: str, tmp_path: Path) -> None:
    """Issue 14 §4: with every SpeechCraft run finished, each LLM system starts from its own one
    (Sys. 5 from SpeechCraft's Sys. 5, never from Sys. 7's model trained with descriptions)."""
    s = systems.get(name)
    sc = tmp_path / "sc"
    _finish(sc, *(x.final for x in systems.SYSTEMS.values()))
    st = systems.first_run(s, "auto", str(sc))
    if s.kind == "ssl_ser":
        assert (st.init, st.how, st.run) == (None, "ssl", s.final)
        return
    assert st.init == f"{sc}/{s.final}" and st.how == "speechcraft", st
    # its own config of the first run: a shared stage 1 only when the sharer starts from the same model
    assert st.run == s.own_first
    # --ablation-init proposed: Tab. 3's ablations start from Sys. 7's model, the Tab. 2 systems not
    prop = systems.first_run(s, "auto", str(sc), "proposed")
    assert prop.init == (f"{sc}/sys7_stage2" if s.ablation else f"{sc}/{s.final}")
    if s.ablation and s.stage1 == "sys7_stage1":  # the two-stage ablation then shares Sys. 7's stage 1
        assert prop.run == "sys7_stage1" and "shared with sys7" in prop.note


def test_the_ablations_are_the_tab3_rows() -> None:
    assert sorted(n for n, s in systems.SYSTEMS.items() if s.ablation) == sorted(
        n for n in systems.SYSTEMS if n.startswith("tab3_")
    )


def test_without_its_speechcraft_run_a_system_trains_from_scratch_never_from_another(tmp_path: Path) -> None:
    sc = tmp_path / "sc"
    _finish(sc, "sys7_stage2")  # only the proposed system's SpeechCraft run is finished
    (sc / "sys5_stage2").mkdir()  # started, not finished: never used
    sys7, sys5 = systems.first_run("sys7", "auto", str(sc)), systems.first_run("sys5", "auto", str(sc))
    assert (sys7.run, sys7.init, sys7.how) == ("sys7_stage1", f"{sc}/sys7_stage2", "speechcraft")
    assert (sys5.run, sys5.init, sys5.how) == ("sys5_stage1", None, "scratch") and sys5.warn
    assert "FROM SCRATCH" in sys5.note and f"{sc}/sys5_stage2" in sys5.note and "add sys5" in sys5.note
    two = systems.first_run("tab3_sys2_two_stage", "auto", str(sc))
    assert two.how == "scratch" and "--ablation-init proposed" in two.note
    # all from scratch (--init-from none): Sys. 5 and the two-stage ablation share Sys. 7's stage 1
    for name in ("sys7", "sys5", "tab3_sys2_two_stage"):
        st = systems.first_run(name, "none", str(sc))
        assert (st.run, st.init, st.how) == ("sys7_stage1", None, "none")
    # --init-from EXP: every first run from it (shared stage 1 again); a missing one is an error
    assert systems.first_run("sys5", str(sc / "sys7_stage2"), str(sc)).run == "sys7_stage1"
    with pytest.raises(FileNotFoundError, match="--init-from /no/exp: no such experiment"):
        systems.first_run("sys7", "/no/exp", str(sc))
    with pytest.raises(KeyError, match="--ablation-init"):
        systems.first_run("tab3_sys5_beta1", "auto", str(sc), "mine")


def test_the_starts_table_names_each_systems_model() -> None:
    table = systems.starts_table()
    assert "| sys5 | sys5_stage1 | `../speechcraft/exp/sys5_stage2` | same |" in table
    assert "| tab3_sys5_beta1 | tab3_sys5_beta1_stage1 | `../speechcraft/exp/tab3_sys5_beta1_stage2` | " \
        "`../speechcraft/exp/sys7_stage2` |" in table  # fmt: skip
    assert len(table.splitlines()) == 2 + len(systems.SYSTEMS)
