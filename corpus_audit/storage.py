"""Output files on local or fsspec storage, written under a temporary name and renamed when complete.

Locally the rename is atomic (``os.replace``). Object stores (``s3://``, ``gs://``, ``hf://``) have no
atomic rename: :func:`publish` copies the temporary key to its final name and deletes it. Readers never
see a half-written file either way, because they only ever open final names, which appear complete, and
temporary names (``.name.tmp``, ``name.tmpPID``) never match the patterns they list.
"""

from __future__ import annotations

import fnmatch
import os
from typing import IO, Any

import fsspec


def _fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, p = fsspec.core.url_to_fs(path)
    return fs, p


def _is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return "file" in protocols or "local" in protocols


def is_local(path: str) -> bool:
    """True for a path on the local file system (a plain path or a ``file://`` URL)."""
    return _is_local_fs(_fs(path)[0])


def open_output(path: str, mode: str = "wb") -> IO[Any]:
    """Open ``path`` for writing, creating parent folders (local or remote)."""
    fs, p = _fs(path)
    parent = os.path.dirname(p)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    return fs.open(p, mode)  # type: ignore[no-any-return]


def open_input(path: str, mode: str = "rb") -> IO[Any]:
    """Open ``path`` (local or remote) for reading."""
    fs, p = _fs(path)
    return fs.open(p, mode)  # type: ignore[no-any-return]


def publish(tmp: str, final: str) -> None:
    """Rename a completed temporary file to its final name: atomic on local disks, copy-then-delete on
    object stores (see the module docstring for why readers still never see a partial file)."""
    fs, t = _fs(tmp)
    _, f = _fs(final)
    if _is_local_fs(fs):
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


def list_files(folder: str, pattern: str = "*") -> list[str]:
    """Files directly in ``folder`` whose name matches ``pattern``, sorted, as full paths or URLs.

    Hidden names (a task's unfinished ``.NNNNN.parquet.tmp``) are left out; a missing folder gives ``[]``.
    """
    fs, p = _fs(folder)
    try:
        entries = fs.ls(p, detail=True)
    except FileNotFoundError:
        return []
    names = []
    for e in entries:
        name = e["name"].rstrip("/")
        base = name.rsplit("/", 1)[-1]
        if e.get("type") != "directory" and not base.startswith(".") and fnmatch.fnmatchcase(base, pattern):
            names.append(name if _is_local_fs(fs) else fs.unstrip_protocol(name))
    return sorted(names)


def remove(path: str) -> None:
    """Delete a file or a folder with everything in it; nothing happens when it does not exist."""
    fs, p = _fs(path)
    if fs.exists(p):
        fs.rm(p, recursive=True)


def makedirs(path: str) -> None:
    """Create a folder and its parents (object stores have no folders: nothing to do there)."""
    fs, p = _fs(path)
    fs.makedirs(p, exist_ok=True)


def forget_listings(path: str) -> None:
    """Drop cached listings of ``path``'s file system: other processes (workers, other nodes) wrote there."""
    fs, _ = _fs(path)
    fs.invalidate_cache()
