"""The paper's systems as one graph: configs, the stage-1 run each starts from, what each decodes.

Every recipe (``egs/*/run.sh`` through ``tools/recipe_common.sh``) reads this table and nothing else
to know which runs a system needs and which columns of its table row it must decode, so that:

* systems sharing a stage 1 train it once (Sys. 5 and Tab. 3 Sys. 2 start from Sys. 7's stage 1: their
  own ``*_stage1.yaml`` are identical copies, listed here as ``copies``);
* every system decodes the tasks its table reports (``columns``): ``ua`` needs an emotion task,
  ``wer`` needs ``asr``, ``caption`` needs ``ser_sed`` -- e.g. Tab. 3 Sys. 2 trains stage 2 on
  ``ser_sed`` only but reports a WER, so it also decodes ``asr``;
* the SSL baselines (Tab. 2 Sys. 1-3) run on their own upstream (``upstream``: which recipe option
  names it: ``hubert``, ``wavlm`` or ``wav2vec2``);
* every LLM system's first run on IEMOCAP / MELD starts from the right model (:func:`first_run`,
  "Where a system starts" below).

Where a system starts (``--init-from auto``, the recipes' default).  The paper trains on SpeechCraft
first (``egs/speechcraft``), then on IEMOCAP / MELD.  Each system's first run there (its stage 1, or
the one stage of Sys. 6) starts from the finished SpeechCraft run of *the same system*
(``../speechcraft/exp/<its final run>``, finished = its ``.done`` marker): Sys. 5 from SpeechCraft's
Sys. 5, never from Sys. 7's model trained with descriptions, which would blur the comparisons of
Tab. 2 and 3.  Tab. 3's ablations (``ablation=True``: the two-stage and the beta rows) follow the
same rule by default (``ablation_init="own"``: each Tab. 3 row is the whole pipeline with that one
setting changed, as its EMOSEC columns, measured on the SpeechCraft-trained model, imply), or, with
``ablation_init="proposed"``, start from the proposed system's (Sys. 7's) SpeechCraft model, which
isolates what the setting changes in the target-corpus training alone and needs one SpeechCraft
run instead of one per row.  A system without its SpeechCraft model trains from scratch under a
loud warning (never silently from another system's model).  Systems that would share a stage 1
(Sys. 5 and the two-stage ablation use Sys. 7's) share it only when they start from the same model;
otherwise each trains its own copy of the config (``copies``: ``sys5_stage1``...).

Names are the packaged configs under ``sedtk/conf/paper/`` (a recipe's ``conf/NAME.yaml`` overrides
one).  ``python -m sedtk.systems shell`` prints the graph as bash associative arrays for the recipes;
``python -m sedtk.systems table`` prints it for people; ``python -m sedtk.systems start SYS``
prints where SYS's first run starts (:func:`first_run`), ``starts`` that of every system.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sedtk.errors import MissingInputError, MissingKeyError
from sedtk.utils.tasks import EMOTION_TASKS

#: The tasks a table column needs decoded (any one of them for ``ua``).
COLUMN_TASKS: dict[str, tuple[str, ...]] = {
    "ua": EMOTION_TASKS,
    "wer": ("asr",),
    "caption": ("ser_sed",),
}


@dataclass(frozen=True)
class System:
    name: str  # the recipes' --systems name
    paper: str  # where the paper reports it
    final: str  # the config of the run that gives the decoded model
    stage1: str | None  # the stage-1 config it is initialised from (possibly another system's), or None
    decode: tuple[str, ...]  # tasks decoded (sedtk decode --tasks), in order
    columns: tuple[str, ...]  # the metrics its table rows report
    upstream: str = "hubert"  # the recipe option naming its SSL upstream
    copies: tuple[str, ...] = ()  # packaged configs identical to ``stage1``: its own when not shared
    kind: str = "llm"  # model.kind of its configs: llm (SEDModel) or ssl_ser (the SSL baseline)
    ablation: bool = False  # a Tab. 3 ablation row (its start follows ``ablation_init``)

    @property
    def runs(self) -> tuple[str, ...]:
        """The configs trained for this system, in order."""
        return (self.stage1, self.final) if self.stage1 else (self.final,)

    @property
    def first(self) -> str:
        """The config of its first run (stage 1, or the one stage)."""
        return self.stage1 or self.final

    @property
    def own_first(self) -> str:
        """Its own config of the first run: its copy of a shared stage 1 (``sys5_stage1``), else ``first``."""
        return self.copies[0] if self.copies else self.first


_TAB3 = "Tab. 3 Sys. {} (alternating, beta {})"
SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System("sys1", "Tab. 2 Sys. 1 HuBERT-large (SSL-based SER)", "sys1_hubert", None, ("ser", "asr"),
               ("ua", "wer"), kind="ssl_ser"),
        System("sys2", "Tab. 2 Sys. 2 WavLM-large (SSL-based SER)", "sys2_wavlm", None, ("ser", "asr"),
               ("ua", "wer"), upstream="wavlm", kind="ssl_ser"),
        System("sys3", "Tab. 2 Sys. 3 Wav2Vec-large (SSL-based SER)", "sys3_wav2vec2", None, ("ser", "asr"),
               ("ua", "wer"), upstream="wav2vec2", kind="ssl_ser"),
        System("sys4", "Tab. 2 Sys. 4 = Tab. 1 Sys. 1 HuBERT+LLM-SER+SED+ASR", "sys4_stage2", "sys4_stage1",
               ("ser_sed", "asr"), ("ua", "wer", "caption")),
        System("sys5", "Tab. 2 Sys. 5 = Tab. 3 Sys. 3 HuBERT+FD+LLM-SER+ASR", "sys5_stage2", "sys7_stage1",
               ("ser", "asr"), ("ua", "wer"), copies=("sys5_stage1",)),
        System("sys6", "Tab. 2 Sys. 6 = Tab. 1 Sys. 2 = Tab. 3 Sys. 1 HuBERT+FD+LLM-SER+SED (one stage)",
               "sys6", None, ("ser_sed",), ("ua", "caption")),
        System("sys7", "Tab. 2 Sys. 7 = Tab. 1 Sys. 3 = Tab. 3 Sys. 4 proposed", "sys7_stage2", "sys7_stage1",
               ("ser_sed", "asr"), ("ua", "wer", "caption")),
        System("tab3_sys2_two_stage", "Tab. 3 Sys. 2 (two-stage, no alternation)",
               "tab3_sys2_two_stage_stage2", "sys7_stage1", ("ser_sed", "asr"), ("ua", "wer", "caption"),
               copies=("tab3_sys2_two_stage_stage1",), ablation=True),
        System("tab3_sys5_beta1", _TAB3.format(5, "1"), "tab3_sys5_beta1_stage2", "tab3_sys5_beta1_stage1",
               ("ser_sed", "asr"), ("ua", "wer", "caption"), ablation=True),
        System("tab3_sys6_beta1e-1", _TAB3.format(6, "1e-1"), "tab3_sys6_beta1e-1_stage2",
               "tab3_sys6_beta1e-1_stage1", ("ser_sed", "asr"), ("ua", "wer", "caption"), ablation=True),
        System("tab3_sys7_beta1e-2", _TAB3.format(7, "1e-2"), "tab3_sys7_beta1e-2_stage2",
               "tab3_sys7_beta1e-2_stage1", ("ser_sed", "asr"), ("ua", "wer", "caption"), ablation=True),
        System("tab3_sys8_beta1e-3", _TAB3.format(8, "1e-3"), "tab3_sys8_beta1e-3_stage2",
               "tab3_sys8_beta1e-3_stage1", ("ser_sed", "asr"), ("ua", "wer", "caption"), ablation=True),
    )
}  # fmt: skip


def get(name: str) -> System:
    if name not in SYSTEMS:
        raise MissingKeyError(f"system {name!r}: not a paper system (known: {' '.join(SYSTEMS)})")
    return SYSTEMS[name]


# ----------------------------------------------------------------------------- where a system starts

#: The proposed system (what ``ablation_init="proposed"`` starts Tab. 3's ablations from).
PROPOSED = "sys7"
#: ``--ablation-init``: ``own`` (each ablation from its own SpeechCraft run) or ``proposed``.
ABLATION_INITS = ("own", "proposed")
#: The recipes' default location of the SpeechCraft experiments (``--speechcraft-exp``).
SPEECHCRAFT_EXP = "../speechcraft/exp"


@dataclass(frozen=True)
class Start:
    """Where a system's first run on a corpus starts (:func:`first_run`)."""

    run: str  # the config (and experiment dir name) of the first run, e.g. sys7_stage1 or sys5_stage1
    init: str | None  # the experiment it starts from; None: from scratch (or the SSL upstream)
    how: str  # speechcraft | scratch | none | path | ssl
    note: str  # the reason, for the recipe's log

    @property
    def warn(self) -> bool:
        """An LLM system trains from scratch although the SpeechCraft path was asked for."""
        return self.how == "scratch"


def speechcraft_source(system: System, ablation_init: str = "own") -> System:
    """The system whose SpeechCraft run ``system`` starts from: itself, or for a Tab. 3 ablation
    with ``ablation_init="proposed"`` the proposed system."""
    if ablation_init not in ABLATION_INITS:
        raise MissingKeyError(f"--ablation-init {ablation_init!r}: use one of {', '.join(ABLATION_INITS)}")
    return get(PROPOSED) if system.ablation and ablation_init == "proposed" else system


def _init(system: System, init_from: str, speechcraft_exp: str, ablation_init: str) -> tuple:
    """``(init, how, note)`` of ``system``'s first run (see :func:`first_run`)."""
    name = system.own_first
    if system.kind == "ssl_ser":
        return (
            None,
            "ssl",
            f"{name}: SSL SER baseline, trained from its pre-trained upstream (no SpeechCraft model)",
        )
    if init_from in ("none", ""):
        return None, "none", f"{name}: trains from scratch on this corpus (--init-from none)"
    if init_from != "auto":
        if not Path(init_from).exists():
            raise MissingInputError(f"--init-from {init_from}: no such experiment")
        return init_from, "path", f"{name}: starts from --init-from {init_from}"
    source = speechcraft_source(system, ablation_init)
    exp = f"{speechcraft_exp.rstrip('/')}/{source.final}"
    whose = "its own SpeechCraft run" if source is system else f"the proposed {source.name}'s SpeechCraft run"
    if (Path(exp) / ".done").is_file():
        why = " (--ablation-init proposed)" if source is not system else ""
        return exp, "speechcraft", f"{name}: starts from the SpeechCraft model {exp}, {whose}{why}"
    hint = f"egs/speechcraft/run.sh (add {source.name} to its --systems)"
    if system.ablation and source is system:
        hint += " (or --ablation-init proposed: start from the proposed system's)"
    return (
        None,
        "scratch",
        (
            f"{name} trains FROM SCRATCH: {whose} {exp} is not finished (no .done); train it with {hint}, "
            "or give --init-from EXP"
        ),
    )


def first_run(
    system: System | str,
    init_from: str = "auto",
    speechcraft_exp: str = SPEECHCRAFT_EXP,
    ablation_init: str = "own",
) -> Start:
    """Where ``system``'s first run on IEMOCAP / MELD starts, and under which config name it runs.

    ``init_from``: ``auto`` (the SpeechCraft run of the same system, see the module docstring),
    ``none`` (from scratch) or an experiment dir (every first run starts from it).  A system whose
    stage 1 is another's (``copies``) shares that run when both start from the same model, else
    runs its own copy of the config.
    """
    system = get(system) if isinstance(system, str) else system
    init, how, note = _init(system, init_from, speechcraft_exp, ablation_init)
    run = system.own_first
    if system.stage1 and system.copies:
        owner = next((s for s in SYSTEMS.values() if s.own_first == system.stage1), None)
        owner_init = _init(owner, init_from, speechcraft_exp, ablation_init)[0] if owner else None
        if owner is None or owner_init == init:
            run = system.stage1
            note = note.replace(system.own_first, system.stage1, 1)
            if owner is not None and owner is not system:
                note += f" (shared with {owner.name})"
    return Start(run, init, how, note)


def missing_columns(system: System) -> list[str]:
    """Columns of the system's table row that its decode tasks do not produce."""
    return [c for c in system.columns if not any(t in system.decode for t in COLUMN_TASKS[c])]


def _shell() -> str:
    """The graph as bash associative arrays (``eval``-ed by tools/recipe_common.sh)."""
    import shlex

    from sedtk.config import PACKAGED_CONF

    lines = [f"declare -gA {v}=()" for v in ("SEDTK_SYS_FINAL", "SEDTK_SYS_STAGE1", "SEDTK_SYS_TASKS",
                                             "SEDTK_SYS_UPSTREAM", "SEDTK_SYS_KIND")]  # fmt: skip
    lines.append(f"SEDTK_CONF_DIR={shlex.quote(str(PACKAGED_CONF))}")  # the packaged configs
    for s in SYSTEMS.values():
        k = shlex.quote(s.name)
        lines += [
            f"SEDTK_SYS_FINAL[{k}]={shlex.quote(s.final)}",
            f"SEDTK_SYS_STAGE1[{k}]={shlex.quote(s.stage1 or '')}",
            f"SEDTK_SYS_TASKS[{k}]={shlex.quote(','.join(s.decode))}",
            f"SEDTK_SYS_UPSTREAM[{k}]={shlex.quote(s.upstream)}",
            f"SEDTK_SYS_KIND[{k}]={shlex.quote(s.kind)}",
        ]
    return "\n".join(lines)


def _table() -> str:
    rows = ["| system | paper | stage 1 | final | decodes | reports |", "|---|---|---|---|---|---|"]
    for s in SYSTEMS.values():
        rows.append(
            f"| {s.name} | {s.paper} | {s.stage1 or '-'} | {s.final} | {', '.join(s.decode)} | "
            f"{', '.join(s.columns)} |"
        )
    return "\n".join(rows)


def starts_table(speechcraft_exp: str = SPEECHCRAFT_EXP) -> str:
    """What every system's first run on IEMOCAP / MELD starts from (``--init-from auto``), per
    ``--ablation-init``, for people (the recipe READMEs quote it)."""
    rows = [
        "| system | first run | starts from (`--ablation-init own`, default) "
        "| with `--ablation-init proposed` |",
        "|---|---|---|---|",
    ]
    for s in SYSTEMS.values():
        if s.kind == "ssl_ser":
            rows.append(f"| {s.name} | {s.first} | its pre-trained upstream (no SpeechCraft model) | same |")
            continue
        own, prop = (f"`{speechcraft_exp}/{speechcraft_source(s, a).final}`" for a in ABLATION_INITS)
        rows.append(f"| {s.name} | {s.own_first} | {own} | {prop if prop != own else 'same'} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sedtk.systems", description="The paper's system graph.")
    sub = parser.add_subparsers(dest="what")
    sub.add_parser("table", help="the systems, for people (default)")
    sub.add_parser("shell", help="the graph as bash associative arrays (tools/recipe_common.sh)")
    for name, text in (("start", "where SYS's first run starts: four lines RUN, INIT, HOW, NOTE"),
                       ("starts", "what every system starts from, as a Markdown table")):  # fmt: skip
        p = sub.add_parser(name, help=text)
        if name == "start":
            p.add_argument("system")
        p.add_argument("--init-from", default="auto", help="auto | none | EXP")
        p.add_argument("--speechcraft-exp", default=SPEECHCRAFT_EXP)
        p.add_argument("--ablation-init", default="own", choices=ABLATION_INITS)
    try:
        a = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (2) or --help (0), already printed
        return int(e.code or 0)
    try:
        if a.what == "shell":
            print(_shell())
        elif a.what == "start":
            st = first_run(a.system, a.init_from, a.speechcraft_exp, a.ablation_init)
            print("\n".join([st.run, st.init or "", st.how, st.note]))
        elif a.what == "starts":
            print(starts_table(a.speechcraft_exp))
        else:
            print(_table())
    except (MissingKeyError, MissingInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
