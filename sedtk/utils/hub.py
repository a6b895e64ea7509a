"""Hugging Face hub references: ``org/name[@revision]`` resolved through ``huggingface_hub``.

Everything goes through ``huggingface_hub.snapshot_download``, so its cache layout
(``models--org--name/{blobs,refs,snapshots}``), its token (``HF_TOKEN``, ``hf auth login``) and its
offline mode hold.  ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and ``HF_HOME`` are read at each call (not
only when ``huggingface_hub`` is first imported), so a notebook or a test that sets them later is
honoured; offline, only what the cache holds is used and a missing entry is one error line saying
how to fetch it.

The base models themselves (``facebook/hubert-large-ls960-ft``, ``meta-llama/Llama-3.1-8B-Instruct``)
are loaded by transformers' ``from_pretrained``, which raises an ``OSError`` whose cause is a
``huggingface_hub`` error; :func:`hub_errors` turns those into one :class:`ModelUnavailableError`
line naming the model and the fixes -- gated (accept the licence on the model's page, then
``HF_TOKEN`` or ``hf auth login``), not found (a typo, or a private repo without a token), not cached
with the hub unreachable or ``HF_HUB_OFFLINE=1`` (fill a cache where there is network: ``sedtk
model download ID... --cache DIR``, :func:`download`, then ``HF_HUB_CACHE=DIR``) -- and always a local
copy through the option that names the model (``--set model.llm=PATH``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
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


def snapshot(
    repo_id: str,
    revision: str | None = None,
    what: str = "model",
    cache: str | os.PathLike | None = None,
    ignore_patterns: Sequence[str] | None = tuple(IGNORE_PATTERNS),
) -> Path:
    """The local folder of ``repo_id`` at ``revision`` (default the main branch), downloaded into the
    hub cache (``cache``, default :func:`cache_dir`) unless it is there already; offline, from the
    cache only.  ``ignore_patterns``: files not fetched (None: every file)."""
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
    where = Path(cache) if cache is not None else cache_dir()
    try:
        path = snapshot_download(
            repo_id, revision=revision, cache_dir=where, local_files_only=off,
            ignore_patterns=list(ignore_patterns) if ignore_patterns is not None else None,
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
            f"{what} {ref}: not in the Hugging Face cache {where} and {how}; fetch it where there is "
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


# ----------------------------------------------------------------------------- base models


class ModelUnavailableError(NoModelError):
    """A base model that is neither a local folder nor obtainable from the hub or its cache."""


#: How a role's local copy is given instead (the error's last fix).
LOCAL_COPY = {
    "LLM": "--set model.llm=PATH (sedtk decode: --llm PATH)",
    "upstream": "--set model.upstream=PATH (sedtk decode: --upstream PATH)",
}


def _cause(e: BaseException | None) -> str | None:
    """``gated``, ``not_found``, ``not_cached`` (offline or unreachable) or None (not a hub error)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    seen = set()
    while e is not None and id(e) not in seen:  # transformers wraps the hub's error in an OSError
        seen.add(id(e))
        if isinstance(e, GatedRepoError):  # a RepositoryNotFoundError: tested first
            return "gated"
        if isinstance(e, RepositoryNotFoundError | RevisionNotFoundError | HFValidationError):
            return "not_found"
        if isinstance(e, LocalEntryNotFoundError | OfflineModeIsEnabled | ConnectionError):
            return "not_cached"
        text = str(e)
        if "gated repo" in text or ("restricted" in text and "huggingface.co" in text):
            return "gated"
        if "is not a local folder and is not a valid model identifier" in text:
            return "not_found"
        if ("couldn't connect to" in text and "huggingface.co" in text) or "offline mode" in text:
            return "not_cached"
        e = e.__cause__ or e.__context__
    return None


def unavailable_message(name: str, what: str, cause: str, option: str | None = None) -> str:
    """The one line of :class:`ModelUnavailableError`."""
    local = f"or give a local copy with {option or LOCAL_COPY.get(what, 'its option')}"
    if cause == "gated":
        return (
            f"{what} {name!r} is gated on the Hugging Face hub and this machine has no access to it: accept "
            f"its licence at https://huggingface.co/{name}, then set HF_TOKEN or run 'hf auth login'; {local}"
        )
    if cause == "not_found":
        return (
            f"{what} {name!r} is neither a local folder nor a model on the Hugging Face hub (check the "
            f"path or id; a private model needs HF_TOKEN or 'hf auth login'); {local}"
        )
    why = "HF_HUB_OFFLINE=1 forbids the network" if offline() else "the Hugging Face hub cannot be reached"
    return (
        f"{what} {name!r} is not in the Hugging Face cache {cache_dir()} and {why}: on a machine with "
        f"network run 'sedtk model download {name} --cache DIR' and set HF_HUB_CACHE=DIR here; {local}"
    )


@contextlib.contextmanager
def hub_errors(name: str | os.PathLike, what: str, option: str | None = None) -> Iterator[None]:
    """Turn a failure to get base model ``name`` from the hub into one :class:`ModelUnavailableError`.

    ``what`` names its role in the message (``LLM``, ``upstream``); ``option`` how to give a local
    copy instead (default :data:`LOCAL_COPY` of the role).  Other errors pass through unchanged.
    """
    try:
        yield
    except NoModelError:
        raise
    except Exception as e:
        if Path(str(name)).exists():  # a local folder: its own error (a corrupt file) is the news
            raise
        cause = _cause(e)
        if cause is None:
            raise
        raise ModelUnavailableError(unavailable_message(str(name), what, cause, option)) from e


def download(
    ids: Sequence[str],
    cache: str | os.PathLike | None = None,
    revision: str | None = None,
    everything: bool = False,
) -> list[Path]:
    """Fill a hub cache with ``ids`` (:func:`snapshot`: ``huggingface_hub.snapshot_download``); their
    snapshot folders.  Compute nodes without internet then read them with ``HF_HUB_CACHE=cache
    HF_HUB_OFFLINE=1``.  Files of :data:`IGNORE_PATTERNS` (Llama's ``original/`` copy, other
    frameworks' weights) are left out unless ``everything``.  Cached files are not fetched again;
    an interrupted download resumes.
    """
    out = []
    for repo in ids:
        if parse_hub_ref(repo) is None or Path(repo).exists():
            raise NoModelError(f"{repo}: not a Hugging Face hub id (ORG/NAME); nothing to download")
        out.append(
            snapshot(repo, revision, cache=cache, ignore_patterns=None if everything else IGNORE_PATTERNS)
        )
    return out
