"""The shell helpers every recipe sources (tools/recipe_common.sh), jobs and plans included."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The recipes find sedtk on PATH: the interpreter running the tests has it beside itself.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "tools" / "recipe_common.sh"


def bash(script: str, cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = cwd / "script.sh"
    path.write_text(f"set -euo pipefail\n. {COMMON}\n" + textwrap.dedent(script))
    return subprocess.run(
        ["bash", str(path), *args], cwd=cwd, capture_output=True, text=True, env={**ENV, **(env or {})}
    )


OPTIONS = """
stage=0
stop_stage=5
nj=4
force=false
init_from=""
help_message="usage: script.sh [--stage N]"
parse_options "$@"
echo "stage=$stage stop_stage=$stop_stage nj=$nj force=$force init_from=$init_from"
"""


def test_parse_options_sets_defined_variables(tmp_path: Path) -> None:
    r = bash(OPTIONS, tmp_path, "--stage", "2", "--stop-stage=4", "--force", "true", "--init-from", "a b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=2 stop_stage=4 nj=4 force=true init_from=a b"


def test_parse_options_config_file_and_help(tmp_path: Path) -> None:
    (tmp_path / "opts.sh").write_text("nj=16\n")
    r = bash(OPTIONS, tmp_path, "--config", "opts.sh", "--stage", "1")
    assert r.stdout.strip() == "stage=1 stop_stage=5 nj=16 force=false init_from="
    r = bash(OPTIONS, tmp_path, "--help")
    assert r.returncode == 0 and r.stdout.strip() == "usage: script.sh [--stage N]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus", "1"], "invalid option --bogus"),
        (["--force", "yes"], "--force takes true or false, got 'yes'"),
        (["--stage"], "option --stage needs a value"),
        (["positional"], "unexpected argument 'positional'"),
    ],
)
def test_parse_options_rejects_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    r = bash(OPTIONS, tmp_path, *args)
    assert r.returncode == 1
    assert message in r.stderr
    assert "(script.sh:" in r.stderr  # names the recipe line, not the helper


def test_log_names_file_line_and_function(tmp_path: Path) -> None:
    r = bash('f() {\n  log "hello"\n}\nf\nlog "top"\n', tmp_path)
    lines = r.stdout.splitlines()
    assert lines[0].endswith("(script.sh:4:f) hello")
    assert lines[1].endswith("(script.sh:7:main) top")


def test_stage_enabled(tmp_path: Path) -> None:
    script = """
    stage=2; stop_stage=3
    for s in 1 2 3 4; do stage_enabled $s && echo "on $s" || echo "off $s"; done
    """
    assert bash(script, tmp_path).stdout.split("\n")[:4] == ["off 1", "on 2", "on 3", "off 4"]


STEP = """
force=false
parse_options "$@"
run_step out conf.yaml data -- bash -c 'echo ran >> runs.txt; mkdir -p out' --nj "$1"
"""


def test_run_step_skips_done_work_and_redoes_changed_inputs(tmp_path: Path) -> None:
    def run(*args: str) -> int:
        r = bash(STEP.replace('"$1"', args[0] if args else "1"), tmp_path, *args[1:])
        assert r.returncode == 0, r.stderr
        return (tmp_path / "runs.txt").read_text().count("ran")

    (tmp_path / "conf.yaml").write_text("base: parent\nlr: 1\n")
    (tmp_path / "parent.yaml").write_text("epochs: 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text").write_text("u1 hello\n")
    assert run() == 1
    assert (tmp_path / "out" / ".done").is_file()
    assert run() == 1  # unchanged: skipped
    assert run("8") == 1  # the number of jobs is not an input
    (tmp_path / "parent.yaml").write_text("epochs: 2\n")  # an inherited config changed
    assert run() == 2
    (tmp_path / "data" / "text").write_text("u1 hello there\n")  # an input data dir changed
    assert run() == 3
    assert run() == 3
    assert run("1", "--force", "true") == 4


def test_run_step_chains_through_upstream_markers(tmp_path: Path) -> None:
    script = """
    run_step a -- bash -c 'mkdir -p a; echo "$0" > a/value' "$1"
    run_step b a -- bash -c 'echo ran >> runs.txt; mkdir -p b'
    """
    for value, runs in [("x", 1), ("x", 1), ("y", 2)]:
        r = bash(script.replace('"$1"', value), tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "runs.txt").read_text().count("ran") == runs


def test_run_step_failure_leaves_no_marker(tmp_path: Path) -> None:
    r = bash("run_step out -- bash -c 'mkdir -p out; exit 3'\n", tmp_path)
    assert r.returncode == 1
    assert "failed: bash -c" in r.stderr
    assert not (tmp_path / "out" / ".done").exists()


def test_require_dir_names_the_variable(tmp_path: Path) -> None:
    r = bash('IEMOCAP=""\nrequire_dir IEMOCAP\n', tmp_path)
    assert r.returncode == 1 and "IEMOCAP is not set" in r.stderr
    r = bash(f"IEMOCAP={tmp_path}/nowhere\nrequire_dir IEMOCAP\n", tmp_path)
    assert r.returncode == 1 and "no such directory" in r.stderr


JOBS = """
cmd=local; max_jobs=0; force=false; jobs_conf=""
parse_options "$@"
mkdir -p exp/log
job prep exp/log/prep.log data -- bash -c 'mkdir -p data; echo u1 hi > data/text; echo prepared'
[ "${PLAN:-}" = true ] && jobs_begin
job --gpus 1 train exp/log/train_a.log exp/a data -- \
  bash -c 'echo ran a >> runs.txt; mkdir -p exp/a; echo "$0" > exp/a/w' "$1"
job --gpus 1 train exp/log/train_b.log exp/b exp/a -- bash -c 'echo ran b >> runs.txt; mkdir -p exp/b'
job --gpus 1 decode exp/log/decode_b.log exp/b/decode exp/b -- bash -c 'echo ran d >> runs.txt' --nj 4
[ "${PLAN:-}" = true ] && jobs_run
cat exp/b/decode/.done
"""


def test_job_runs_now_outside_a_plan_with_its_request_in_the_log(tmp_path: Path) -> None:
    r = bash(JOBS.replace('"$1"', "x"), tmp_path)
    assert r.returncode == 0, r.stderr
    assert "prepared" in r.stdout  # a job run now shows its output
    log = (tmp_path / "exp/log/train_a.log").read_text()
    assert "# request: train: 1 GPU, 8 CPUs, 60G per GPU memory, time 3-00:00:00" in log
    assert "# asked: local pool" in log and log.rstrip().endswith("with status 0")
    again = bash(JOBS.replace('"$1"', "x"), tmp_path)
    assert "skip exp/a: done with the same config and inputs" in again.stdout
    assert (tmp_path / "runs.txt").read_text().count("ran") == 3
    failing = bash("job score exp/log/s.log out -- bash -c 'echo boom; exit 3'\n", tmp_path)
    assert failing.returncode == 1 and "boom" in failing.stdout + failing.stderr
    assert not (tmp_path / "out/.done").exists()


def test_a_plan_gives_the_markers_of_one_step_after_another(tmp_path: Path) -> None:
    """Planned jobs hash the markers their inputs' jobs will write: the same keys as run one by one, so
    a re-run either way skips everything; a changed input redoes that job and the jobs after it."""
    seq, plan = tmp_path / "seq", tmp_path / "plan"
    seq.mkdir(), plan.mkdir()
    one = bash(JOBS.replace('"$1"', "x"), seq)
    both = bash(JOBS.replace('"$1"', "x"), plan, env={"PLAN": "true"})
    assert one.returncode == 0 and both.returncode == 0, both.stderr
    assert one.stdout.splitlines()[-1] == both.stdout.splitlines()[-1]  # exp/b/decode/.done
    assert "3 job(s) to run" in both.stdout
    again = bash(JOBS.replace('"$1"', "x"), plan, env={"PLAN": "true"})
    assert "3 of 3 job(s) done before" in again.stdout
    changed = bash(JOBS.replace('"$1"', "y"), plan, env={"PLAN": "true"})
    assert "3 job(s) to run" in changed.stdout
    assert (plan / "runs.txt").read_text().count("ran") == 6
    assert (plan / "exp/a.old/w").read_text() == "x\n"  # the finished old output is kept


def test_a_plan_refuses_an_input_inside_a_planned_output(tmp_path: Path) -> None:
    script = """
    jobs_begin
    job train exp/log/a.log exp/a -- true
    job decode exp/log/b.log exp/b exp/a/checkpoints -- true
    """
    r = bash(script, tmp_path)
    assert r.returncode == 1 and "its input exp/a/checkpoints lies inside exp/a" in r.stderr


def test_conf_hash_follows_packaged_base(tmp_path: Path) -> None:
    """A recipe conf inheriting ``paper/...`` is hashed together with the packaged files it inherits."""
    (tmp_path / "conf.yaml").write_text("base: paper/sys5_stage2\ntrain:\n  epochs: 1\n")
    r = bash("_conf_chain conf.yaml\n", tmp_path)
    chain = [Path(p).name for p in r.stdout.split()]
    assert chain == ["conf.yaml", "sys5_stage2.yaml", "sys7_stage2.yaml", "common.yaml"], r.stderr


def test_system_graph_in_the_shell(tmp_path: Path) -> None:
    """The recipes' view of sedtk/systems.py: shared stage 1, final runs, decode tasks, upstreams."""
    script = """
    hubert=/m/hubert-large; wavlm=/m/wavlm-large; systems_arr=(sys7 sys5 sys1 sys2)
    for s in sys7 sys5 sys4 sys6 sys1 sys2 tab3_sys2_two_stage; do
      echo "$s [$(system_stage1 conf $s)] $(system_final conf $s) $(system_tasks $s) $(system_dump $s)"
    done
    system_upstreams
    mkdir -p conf && echo 'base: paper/sys6' > conf/sys6.yaml
    basename "$(system_conf conf sys6)"; system_conf conf sys7_stage2 | sed 's|.*/sedtk/conf/|packaged:|'
    """
    assert bash(script, tmp_path).stdout.splitlines() == [
        "sys7 [sys7_stage1] sys7_stage2 ser_sed,asr dump/hubert-large",
        "sys5 [sys7_stage1] sys5_stage2 ser,asr dump/hubert-large",  # Sys. 5's stage 1 is Sys. 7's
        "sys4 [sys4_stage1] sys4_stage2 ser_sed,asr dump/hubert-large",
        "sys6 [] sys6 ser_sed dump/hubert-large",  # one stage
        "sys1 [] sys1_hubert ser,asr dump/hubert-large",  # the SSL baselines: one stage
        "sys2 [] sys2_wavlm ser,asr dump/wavlm-large",
        "tab3_sys2_two_stage [sys7_stage1] tab3_sys2_two_stage_stage2 ser_sed,asr dump/hubert-large",
        "/m/hubert-large",
        "/m/wavlm-large",
        "sys6.yaml",  # the recipe's own conf/ overrides the packaged config
        "packaged:paper/sys7_stage2.yaml",
    ]
    r = bash("system_final conf sys9\n", tmp_path)
    assert r.returncode == 1 and "system sys9: not a paper system" in r.stderr
    r = bash("systems_arr=(sys3); system_upstream sys3\n", tmp_path)
    assert r.returncode == 1 and "the 'wav2vec2' upstream: set --wav2vec2" in r.stderr


def test_first_runs_start_from_the_speechcraft_run_of_the_same_system(tmp_path: Path) -> None:
    """--init-from auto: each system's own finished SpeechCraft run (sedtk/systems.py first_run),
    else scratch with a loud warning; Sys. 5 never starts from Sys. 7's model (issue 14 §4)."""
    for final in ("sys7_stage2", "sys5_stage2"):
        (tmp_path / "sc" / final).mkdir(parents=True)
        (tmp_path / "sc" / final / ".done").write_text("x\n")
    (tmp_path / "sc/sys4_stage2").mkdir()  # unfinished: never used
    script = """
    speechcraft_exp=sc; init_from=auto
    echo "sys7=$(system_start sys7) sys5=$(system_start sys5)"
    echo "sys4=$(system_start sys4) sys1=$(system_start sys1)"
    echo "two=$(system_start tab3_sys2_two_stage)"
    ablation_init=proposed; echo "two-proposed=$(system_start tab3_sys2_two_stage)"
    ablation_init=own init_from=none; echo "none=$(system_start sys5)"
    init_from=sc/sys5_stage2; echo "path=$(system_start sys6)"
    """
    r = bash(script, tmp_path)
    assert r.stdout.splitlines() == [
        "sys7=sys7_stage1 sc/sys7_stage2 sys5=sys5_stage1 sc/sys5_stage2",  # own runs: stage 1 not shared
        "sys4=sys4_stage1  sys1=sys1_hubert ",
        "two=tab3_sys2_two_stage_stage1 ",
        "two-proposed=sys7_stage1 sc/sys7_stage2",  # then it shares Sys. 7's stage 1
        "none=sys7_stage1 ",  # everything from scratch: one shared stage 1
        "path=sys6 sc/sys5_stage2",
    ], r.stderr
    assert (
        "sys7_stage1: starts from the SpeechCraft model sc/sys7_stage2, its own SpeechCraft run" in r.stderr
    )
    assert "sys5_stage1: starts from the SpeechCraft model sc/sys5_stage2" in r.stderr
    assert "WARNING: sys4_stage1 trains FROM SCRATCH" in r.stderr and "not comparable" in r.stderr
    assert "sys1_hubert: SSL SER baseline" in r.stderr
    assert "--init-from none" in r.stderr
    # stages 2-3: Sys. 5's stage 2 starts from its own stage 1, trained from SpeechCraft's Sys. 5
    runs = bash(
        """
        speechcraft_exp=sc; init_from=auto; conf=conf; online_feats=true; systems_arr=(sys7 sys5)
        system_train() { echo "train $4 $5 init=${6:-}"; }
        systems_stage1 exp data/tr data/dev; systems_stage2 exp data/tr data/dev
        """,
        tmp_path,
    )
    assert [x for x in runs.stdout.splitlines() if x.startswith("train")] == [
        "train sys7 sys7_stage1 init=sc/sys7_stage2",
        "train sys5 sys5_stage1 init=sc/sys5_stage2",
        "train sys7 sys7_stage2 init=exp/sys7_stage1",
        "train sys5 sys5_stage2 init=exp/sys5_stage1",
    ], runs.stderr
    r = bash(
        "conf=conf; systems_arr=(sys7); init_from=missing/exp; systems_stage1 exp data/tr data/dev\n",
        tmp_path,
    )
    assert (
        r.returncode == 1 and "--init-from missing/exp: no such experiment" in r.stderr
    )  # never silently scratch


def test_check_systems_stops_before_any_stage(tmp_path: Path) -> None:
    r = bash("hubert=h; systems_arr=(sys7 sys9); check_systems; echo went-on\n", tmp_path)
    assert r.returncode == 1 and "system sys9: not a paper system" in r.stderr and "went-on" not in r.stdout
    r = bash("hubert=h; systems_arr=(sys7 sys2); check_systems; echo went-on\n", tmp_path)
    assert r.returncode == 1 and "set --wavlm" in r.stderr
    ok = bash("hubert=h; systems_arr=(sys7 sys1); check_systems; echo went-on\n", tmp_path)
    assert ok.stdout == "went-on\n", ok.stderr
