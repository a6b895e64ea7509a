"""A Hugging Face hub cache written exactly as ``huggingface_hub`` lays it out, without a network.

``models--ORG--NAME/blobs/<etag>`` holds each file's bytes (etag: the SHA-256 of LFS files, the git
blob SHA-1 of the others, as the Hub reports them), ``snapshots/<commit>/<path>`` are relative
symlinks to the blobs, ``refs/main`` holds the commit (no newline).  Tests check the result with
``huggingface_hub.scan_cache_dir`` (the library's own reader of that layout).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Suffixes the Hub stores with git LFS by default (its .gitattributes).
LFS_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".model", ".zip"}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_repo(cache: Path, repo_id: str, folder: Path, ref: str = "main") -> str:
    """Put every file under ``folder`` into ``cache`` as commit of ``repo_id``; returns the commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    tree = hashlib.sha1()
    entries = []
    for f in files:
        data = f.read_bytes()
        etag = hashlib.sha256(data).hexdigest() if f.suffix in LFS_SUFFIXES else git_blob_sha1(data)
        rel = f.relative_to(folder).as_posix()
        entries.append((rel, etag, data))
        tree.update(f"{rel}\0{etag}\n".encode())
    commit = tree.hexdigest()  # 40 hex digits, like a git commit id
    for rel, etag, data in entries:
        blob = repo / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = repo / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return commit
