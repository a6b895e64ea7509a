"""sedtk.utils.hub: hub references, cache locations and offline errors (no network).

Real checkpoints (issue 14 §6): a base model that cannot be had is one error line naming it and
the fixes; HF_HUB_OFFLINE=1 reads a cache laid out as huggingface_hub lays it out
(tests/utils/hf_cache.py); sedtk model download.  The gated and missing checks point HF_ENDPOINT at a
local server that answers like the hub does (HTTP 401 with ``X-Error-Code: GatedRepo``, 404 with
``RepoNotFound``), so the real client and transformers' error wrapping run.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sedtk.errors import NoModelError
from sedtk.models.tiny import build_tiny_hubert
from sedtk.utils import hub
from tests.utils.hf_cache import add_repo


def test_parse_hub_ref():
    assert hub.parse_hub_ref("meta-llama/Llama-3.1-8B-Instruct") == ("meta-llama/Llama-3.1-8B-Instruct", None)
    assert hub.parse_hub_ref("org/name@v1.0") == ("org/name", "v1.0")
    for local in ("/abs/path", "./x/y", "../a/b", "a/b/c", "name", "a b/c"):
        assert hub.parse_hub_ref(local) is None, local


def test_cache_is_read_at_call_time_and_offline_misses_say_how_to_fetch(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    commit = add_repo(tmp_path / "hub", "org/m", tmp_path / "m")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snap = hub.snapshot("org/m")
    assert snap.name == commit and (snap / "config.json").read_text() == "{}"
    assert hub.snapshot_location(snap / "config.json") == ("org/m", commit)
    assert hub.cached_revision("org/m") == commit and hub.cached_revision("org/absent") is None
    with pytest.raises(
        NoModelError, match=r"org/absent@v2: not in the Hugging Face cache .* HF_HUB_OFFLINE is set"
    ):
        hub.snapshot("org/absent", "v2")
    from sedtk.decode.model_ref import resolve_model

    assert resolve_model("org/m").hub == "org/m"
    with pytest.raises(NoModelError, match="org/nope: no such local folder; as a Hugging Face hub id"):
        resolve_model("org/nope")
    monkeypatch.chdir(tmp_path)  # 'm' exists here: m/typo is a local path with a typo, not a hub id
    with pytest.raises(NoModelError, match="m/typo: model not found"):
        resolve_model("m/typo")


OFFLINE = r"""
import json, os, sys
from typer.testing import CliRunner
from sedtk.cli import app
from sedtk.features.upstream import load_upstream
from sedtk.models.llm import load_llm
from sedtk.utils.hub import ModelUnavailableError

out = {}
up = load_upstream("sedtk-test/tiny-hubert-ctc")  # from the cache, no network
out["hidden_states"] = up.num_hidden_states
for name, load in (("upstream", lambda: load_upstream("sedtk-test/absent")),
                   ("llm", lambda: load_llm("meta-llama/Llama-3.1-8B-Instruct"))):
    try:
        load()
    except ModelUnavailableError as e:
        out[name] = str(e)
r = CliRunner().invoke(app, ["model", "download", "sedtk-test/tiny-hubert-ctc", "--cache", sys.argv[1]])
out["download"] = (r.exit_code, r.stdout)
r = CliRunner().invoke(app, ["model", "download", "sedtk-test/absent", "--cache", sys.argv[1]])
out["download_missing"] = (r.exit_code, r.stderr)
os.environ["RANK"] = "1"  # another torchrun process: the same error, no line (rank 0 prints it)
r = CliRunner().invoke(app, ["model", "download", "sedtk-test/absent", "--cache", sys.argv[1]])
out["rank1"] = (r.exit_code, r.stderr)
print(json.dumps(out))
"""


def _run(script: str, env: dict, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_offline_base_models_come_from_the_cache_and_a_missing_one_is_one_line(tmp_path: Path) -> None:
    from transformers import AutoConfig, HubertForCTC

    # a HubertForCTC checkpoint (as facebook/hubert-large-ls960-ft) in the cache
    src = build_tiny_hubert(tmp_path / "hubert", seed=0)
    config = AutoConfig.from_pretrained(src)
    config.vocab_size, config.architectures = 12, ["HubertForCTC"]
    HubertForCTC(config).save_pretrained(tmp_path / "ctc")
    (tmp_path / "ctc" / "preprocessor_config.json").write_bytes(
        (src / "preprocessor_config.json").read_bytes()
    )
    cache = tmp_path / "cache"
    commit = add_repo(cache, "sedtk-test/tiny-hubert-ctc", tmp_path / "ctc")
    snap = cache / "models--sedtk-test--tiny-hubert-ctc" / "snapshots" / commit
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home")}
    out = _run(OFFLINE, env, str(cache))
    assert out["hidden_states"] == config.num_hidden_layers + 1
    assert out["upstream"] == (
        f"upstream 'sedtk-test/absent' is not in the Hugging Face cache {cache} and HF_HUB_OFFLINE=1 forbids "
        "the network: on a machine with network run 'sedtk model download sedtk-test/absent --cache DIR' and "
        "set HF_HUB_CACHE=DIR here; or give a local copy with --set model.upstream=PATH (sedtk decode: "
        "--upstream PATH)"
    )
    assert out["llm"].startswith("LLM 'meta-llama/Llama-3.1-8B-Instruct' is not in the Hugging Face cache")
    assert "--set model.llm=PATH" in out["llm"]
    code, stdout = out["download"]
    assert code == 0 and f"sedtk-test/tiny-hubert-ctc: {snap}" in stdout  # already cached: nothing fetched
    code, stderr = out["download_missing"]
    assert code == 1 and stderr.count("error: ") == 1
    assert f"sedtk-test/absent: not in the Hugging Face cache {cache} and HF_HUB_OFFLINE is set" in stderr
    assert out["rank1"] == [1, ""]


class _Hub(http.server.BaseHTTPRequestHandler):
    """Answers every request as the hub does for a gated repo without a token, or a missing one."""

    def _answer(self) -> None:
        gated = "gated" in self.path
        self.send_response(401 if gated else 404)
        self.send_header("X-Error-Code", "GatedRepo" if gated else "RepoNotFound")
        self.send_header("X-Error-Message", "Access restricted" if gated else "Repository not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _answer

    def log_message(self, *args) -> None:
        pass


ONLINE = r"""
import json
from sedtk.models.llm import load_tokenizer
from sedtk.features.upstream import load_upstream
from sedtk.utils.hub import ModelUnavailableError

out = {}
for key, load in (("gated", lambda: load_tokenizer("sedtk-test/gated-llm")),
                  ("missing", lambda: load_upstream("sedtk-test/no-such-model"))):
    try:
        load()
    except ModelUnavailableError as e:
        out[key] = str(e)
print(json.dumps(out))
"""


@pytest.fixture()
def local_hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_gated_and_missing_models_are_one_line_naming_the_fixes(tmp_path: Path, local_hub: str) -> None:
    env = {"HF_ENDPOINT": local_hub, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0"}
    env.pop("HF_TOKEN", None)
    out = _run(ONLINE, env)
    assert out["gated"] == (
        "LLM 'sedtk-test/gated-llm' is gated on the Hugging Face hub and this machine has no access to it: "
        "accept its licence at https://huggingface.co/sedtk-test/gated-llm, then set HF_TOKEN or run "
        "'hf auth login'; or give a local copy with --set model.llm=PATH (sedtk decode: --llm PATH)"
    )
    assert out["missing"].startswith(
        "upstream 'sedtk-test/no-such-model' is neither a local folder nor a model on the Hugging Face hub"
    )
