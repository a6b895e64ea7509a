from __future__ import annotations

import pytest

from tests.report.synth_dirs import make_inputs


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """Synthetic decode/data/explain dirs + timeline, and a real ``score_systems`` score dir of them."""
    from sedtk.score.inputs import SystemSpec
    from sedtk.score.systems import score_systems

    p = make_inputs(tmp_path_factory.mktemp("report_inputs"), n=12)
    p["score"] = p["root"] / "score"
    score_systems(
        [SystemSpec("sys7", [(p["data"], p["decode"])])], out_dir=p["score"], meteor=False, max_missing=5
    )
    return p


@pytest.fixture(scope="session")
def report(inputs, tmp_path_factory):
    """The full report of ``inputs`` (page size 5, audio embedded)."""
    from sedtk.report.build import build_report

    out = tmp_path_factory.mktemp("report_out") / "report.html"
    summary = build_report(
        inputs["decode"],
        out,
        score=inputs["score"],
        explain=inputs["explain"],
        timeline=inputs["timeline"],
        audio="embed",
        page_size=5,
        log=lambda m: None,
    )
    return out, summary
