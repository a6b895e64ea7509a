"""sedtk.utils.hub: hub references, cache locations and offline errors (no network)."""

from __future__ import annotations

import pytest

from sedtk.errors import NoModelError
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
