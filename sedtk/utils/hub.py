"""Hugging Face hub references: ``org/name[@revision]`` resolved through ``huggingface_hub``.

Everything goes through ``huggingface_hub.snapshot_download``, so its cache layout
(``models--org--name/{blobs,refs,snapshots}``), its token (``HF_TOKEN``, ``hf auth login``) and its
offline mode hold.  ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and ``HF_HOME`` are read at each call (not
only when ``huggingface_hub`` is first imported), so a notebook or a test that sets them later is
honoured; offline, only what the cache holds is used and a missing entry is one error line saying
how to fetch it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sedtk.errors import NoModelError

_REF = re.compile(r"^(?P<id>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")
#: ``models--org--name/snapshots/<commit>`` in a path: a snapshot of the hub cache.
_SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<rev>[0-9a-f]{40})(?:/|$)")
#: Files a model never loads (the original Llama consolidated checkpoint, other frameworks' weights).
IGNORE_PATTERNS = ["original/*", "*.pth", "*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "flax_model*"]


def parse_hub_ref(value: str) -> tuple[str, str | None] | None:
    """``"org/name"`` or ``"org/name@rev"`` -> (repo id, revision or None); None for anything else."""
    m = _REF.match(str(value).strip())
    if m is None or m["id"].startswith((".", "/")) or ".." in m["id"]:
        return None
    return m["id"], m["rev"]


def format_hub_ref(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as ``huggingface_hub`` reads it (1/ON/YES/TRUE), at call time."""
    from huggingface_hub import constants

    v = os.environ.get("HF_HUB_OFFLINE")
    if v is None:
        return bool(constants.HF_HUB_OFFLINE)
    return v.strip().upper() in ("1", "ON", "YES", "TRUE")


def cache_dir() -> Path:
    """The hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``huggingface_hub``'s default."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def snapshot(repo_id: str, revision: str | None = None, what: str = "model") -> Path:
    """The local folder of ``repo_id`` at ``revision`` (default the main branch), downloaded into the
    hub cache unless it is there already; offline, from the cache only."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    ref = format_hub_ref(repo_id, revision)
    off = offline()
    try:
        path = snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir(), local_files_only=off,
            ignore_patterns=IGNORE_PATTERNS,
        )  # fmt: skip
    except GatedRepoError:
        raise NoModelError(
            f"{what} {ref}: a gated repository; accept its licence on huggingface.co and log in "
            "(hf auth login, or set HF_TOKEN)"
        ) from None
    except RepositoryNotFoundError:
        raise NoModelError(
            f"{what} {ref}: no such repository on the Hugging Face hub (or it is private: log in with "
            "hf auth login, or set HF_TOKEN)"
        ) from None
    except RevisionNotFoundError:
        raise NoModelError(f"{what} {ref}: the repository has no revision {revision!r}") from None
    except LocalEntryNotFoundError:
        how = "HF_HUB_OFFLINE is set" if off else "the hub cannot be reached"
        raise NoModelError(
            f"{what} {ref}: not in the Hugging Face cache {cache_dir()} and {how}; fetch it where there is "
            f"internet (hf download {repo_id}"
            + (f" --revision {revision}" if revision else "")
            + ") into that cache, or give a local folder"
        ) from None
    except (HfHubHTTPError, OSError) as e:
        raise NoModelError(f"{what} {ref}: cannot be fetched from the Hugging Face hub ({e})") from None
    return Path(path)


def snapshot_location(path: str | os.PathLike) -> tuple[str, str] | None:
    """(repo id, commit) when ``path`` is in a hub cache snapshot (``models--ORG--NAME/snapshots/SHA``)."""
    m = _SNAPSHOT.search(Path(path).resolve().as_posix()) or _SNAPSHOT.search(Path(path).as_posix())
    return (f"{m['org']}/{m['name']}", m["rev"]) if m else None


def cached_revision(repo_id: str, revision: str | None = None) -> str | None:
    """The commit the hub cache holds for ``repo_id`` at ``revision`` (default main), or None."""
    refs = cache_dir() / f"models--{repo_id.replace('/', '--')}"
    rev = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", rev):
        return rev if (refs / "snapshots" / rev).is_dir() else None
    ref_file = refs / "refs" / rev
    if ref_file.is_file():
        commit = ref_file.read_text(encoding="utf-8").strip()
        return commit if (refs / "snapshots" / commit).is_dir() else None
    return None
