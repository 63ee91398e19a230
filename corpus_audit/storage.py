"""Output files on local or fsspec storage, written under a temporary name and renamed when complete."""

from __future__ import annotations

import os
from typing import IO, Any

import fsspec


def _fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, p = fsspec.core.url_to_fs(path)
    return fs, p


def open_output(path: str, mode: str = "wb") -> IO[Any]:
    """Open ``path`` for writing, creating parent folders (local or remote)."""
    fs, p = _fs(path)
    parent = os.path.dirname(p)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    return fs.open(p, mode)  # type: ignore[no-any-return]


def publish(tmp: str, final: str) -> None:
    """Rename a completed temporary file to its final name (atomic on local disks)."""
    fs, t = _fs(tmp)
    _, f = _fs(final)
    if fs.protocol in ("file", "local") or "file" in fs.protocol:
        os.replace(t, f)
    else:
        fs.mv(t, f)


def atomic_write_text(path: str, text: str) -> None:
    """Write a small text file so that readers see either the old or the complete new content."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open_output(tmp, "wt") as fh:
        fh.write(text)
    publish(tmp, path)


def read_text(path: str) -> str:
    fs, p = _fs(path)
    with fs.open(p, "rt", encoding="utf-8") as fh:
        return fh.read()  # type: ignore[no-any-return]


def exists(path: str) -> bool:
    fs, p = _fs(path)
    return bool(fs.exists(p))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])
