"""The paper's systems as one graph: configs, the stage-1 run each starts from, what each decodes.

Every recipe (``egs/*/run.sh`` through ``tools/recipe_common.sh``) reads this table and nothing else
to know which runs a system needs and which columns of its table row it must decode, so that:

* systems sharing a stage 1 train it once (Sys. 5 and Tab. 3 Sys. 2 start from Sys. 7's stage 1: their
  own ``*_stage1.yaml`` are identical copies, listed here as ``copies``);
* every system decodes the tasks its table reports (``columns``): ``ua`` needs an emotion task,
  ``wer`` needs ``asr``, ``caption`` needs ``ser_sed`` -- e.g. Tab. 3 Sys. 2 trains stage 2 on
  ``ser_sed`` only but reports a WER, so it also decodes ``asr``;
* the SSL baselines (Tab. 2 Sys. 1-3) run on their own upstream (``upstream``: which recipe option
  names it: ``hubert``, ``wavlm`` or ``wav2vec2``).

Names are the packaged configs under ``sedtk/conf/paper/`` (a recipe's ``conf/NAME.yaml`` overrides
one).  ``python -m sedtk.systems shell`` prints the graph as bash associative arrays for the recipes;
``python -m sedtk.systems table`` prints it for people.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sedtk.errors import MissingKeyError
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
    copies: tuple[str, ...] = ()  # packaged configs identical to ``stage1`` (kept for direct use)
    kind: str = "llm"  # model.kind of its configs: llm (SEDModel) or ssl_ser (the SSL baseline)

    @property
    def runs(self) -> tuple[str, ...]:
        """The configs trained for this system, in order."""
        return (self.stage1, self.final) if self.stage1 else (self.final,)


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
               copies=("tab3_sys2_two_stage_stage1",)),
        System("tab3_sys5_beta1", _TAB3.format(5, "1"), "tab3_sys5_beta1_stage2", "tab3_sys5_beta1_stage1",
               ("ser_sed", "asr"), ("ua", "wer", "caption")),
        System("tab3_sys6_beta1e-1", _TAB3.format(6, "1e-1"), "tab3_sys6_beta1e-1_stage2",
               "tab3_sys6_beta1e-1_stage1", ("ser_sed", "asr"), ("ua", "wer", "caption")),
        System("tab3_sys7_beta1e-2", _TAB3.format(7, "1e-2"), "tab3_sys7_beta1e-2_stage2",
               "tab3_sys7_beta1e-2_stage1", ("ser_sed", "asr"), ("ua", "wer", "caption")),
        System("tab3_sys8_beta1e-3", _TAB3.format(8, "1e-3"), "tab3_sys8_beta1e-3_stage2",
               "tab3_sys8_beta1e-3_stage1", ("ser_sed", "asr"), ("ua", "wer", "caption")),
    )
}  # fmt: skip


def get(name: str) -> System:
    if name not in SYSTEMS:
        raise MissingKeyError(f"system {name!r}: not a paper system (known: {' '.join(SYSTEMS)})")
    return SYSTEMS[name]


def missing_columns(system: System) -> list[str]:
    """Columns of the system's table row that its decode tasks do not produce."""
    return [c for c in system.columns if not any(t in system.decode for t in COLUMN_TASKS[c])]


def _shell() -> str:
    """The graph as bash associative arrays (``eval``-ed by tools/recipe_common.sh)."""
    import shlex

    lines = [f"declare -gA {v}=()" for v in ("SEDTK_SYS_FINAL", "SEDTK_SYS_STAGE1", "SEDTK_SYS_TASKS",
                                             "SEDTK_SYS_UPSTREAM", "SEDTK_SYS_KIND")]  # fmt: skip
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


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "table"
    if what not in ("shell", "table"):
        print(f"usage: python -m sedtk.systems [shell|table] (got {what!r})", file=sys.stderr)
        return 2
    print(_shell() if what == "shell" else _table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
