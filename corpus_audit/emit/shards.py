"""Output shards in the input's format (jsonl, jsonl.gz, jsonl.zst, parquet), split by size and written atomically.

Each shard is written to ``.<name>.tmp`` beside its final name and renamed by :meth:`ShardWriter.publish`,
which the emit task calls only after its whole input file was read and checked, so a failed or killed task
publishes nothing. Output is byte-for-byte reproducible: gzip (ISA-L's igzip, as datatrove's writers use
through fsspec) runs at a fixed level and its headers carry no time or file name, zstd runs single-threaded
at a fixed level, and Parquet row groups have a fixed number of rows. JSON lines reach the compressor in
blocks of about a megabyte.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import IO, Any

import orjson
from isal import igzip

from corpus_audit.storage import open_output, publish

PARQUET_ROWS_PER_GROUP = 1024
PARQUET_ROW_OVERHEAD = 64  # bytes counted per Parquet row besides its text, for splitting by size
ZSTD_LEVEL = 3
GZIP_LEVEL = 2  # ISA-L's levels are 0-3; 2 is its default, about zlib's level 6 in size
WRITE_BLOCK = 1 << 20  # bytes of JSON lines gathered before one write to the (compressing) stream


@dataclass
class Shard:
    """One written shard: its final path (relative to the output folder), documents and checksum."""

    path: str
    tmp: str
    final: str
    documents: int = 0
    bytes: int = 0
    sha256: str = ""


def _sha256(path: str) -> str:
    import fsspec

    h = hashlib.sha256()
    with fsspec.open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ShardWriter:
    """Write records to ``<root>/<folder>/<stem>-NNNNN<ext>``, starting a new shard before one would pass
    ``max_bytes`` (uncompressed JSON bytes; for Parquet, text bytes plus a small per-row allowance).

    Args:
        root: the output folder (local path or fsspec URL).
        folder, stem, ext: the shard names' parts, e.g. ``"web"``, ``"part-0"``, ``".jsonl.gz"``.
        format, compression: ``"jsonl"`` with None, ``"gzip"`` or ``"zstd"``; or ``"parquet"``.
        max_bytes: size at which a shard is closed and the next one started.
        schema: the Parquet schema (a ``pyarrow.Schema``); records are converted to it.
        text_key: the text field, for Parquet size accounting.
    """

    def __init__(self, root: str, folder: str, stem: str, ext: str, *, format: str, compression: str | None,
                 max_bytes: int, schema: Any = None, text_key: str = "text") -> None:
        self.root = root.rstrip("/")
        self.folder, self.stem, self.ext = folder, stem, ext
        self.format, self.compression = format, compression
        self.max_bytes = max_bytes
        self.schema = schema
        self.text_key = text_key
        self.shards: list[Shard] = []
        self._raw: IO[bytes] | None = None
        self._stream: Any = None
        self._rows: list[dict[str, Any]] = []
        self._lines: list[bytes] = []
        self._lines_bytes = 0
        self._current: Shard | None = None

    # --- records ---------------------------------------------------------------------------
    def write(self, record: dict[str, Any]) -> None:
        if self.format == "parquet":
            text = record.get(self.text_key)
            size = (len(text.encode("utf-8")) if isinstance(text, str) else 0) + PARQUET_ROW_OVERHEAD
            self._roll(size)
            self._rows.append(record)
            if len(self._rows) >= PARQUET_ROWS_PER_GROUP:
                self._flush_rows()
        else:
            line = orjson.dumps(record) + b"\n"
            size = len(line)
            self._roll(size)
            self._lines.append(line)
            self._lines_bytes += size
            if self._lines_bytes >= WRITE_BLOCK:
                self._flush_lines()
        assert self._current is not None
        self._current.documents += 1
        self._current.bytes += size

    def _roll(self, size: int) -> None:
        cur = self._current
        if cur is not None and cur.documents and cur.bytes + size > self.max_bytes:
            self._close_shard()
            cur = None
        if cur is None:
            self._open_shard()

    # --- shards ----------------------------------------------------------------------------
    def _open_shard(self) -> None:
        name = f"{self.stem}-{len(self.shards):05d}{self.ext}"
        rel = f"{self.folder}/{name}" if self.folder else name
        final = f"{self.root}/{rel}"
        tmp = f"{self.root}/{self.folder}/.{name}.tmp" if self.folder else f"{self.root}/.{name}.tmp"
        self._current = Shard(rel, tmp, final)
        self._raw = open_output(tmp, "wb")
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._stream = pq.ParquetWriter(self._raw, self.schema, compression="zstd")
        elif self.compression == "gzip":
            self._stream = igzip.IGzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0,
                                           compresslevel=GZIP_LEVEL)
        elif self.compression == "zstd":
            import zstandard

            self._stream = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(self._raw, closefd=False)
        else:
            self._stream = self._raw

    def _flush_lines(self) -> None:
        if self._lines:
            self._stream.write(b"".join(self._lines))
            self._lines.clear()
            self._lines_bytes = 0

    def _flush_rows(self) -> None:
        if not self._rows:
            return
        import pyarrow as pa

        self._stream.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
        self._rows = []

    def _close_shard(self) -> None:
        if self._current is None:
            return
        if self.format == "parquet":
            self._flush_rows()
        else:
            self._flush_lines()
        if self._stream is not self._raw:
            self._stream.close()
        assert self._raw is not None
        self._raw.close()
        self._current.sha256 = _sha256(self._current.tmp)
        self.shards.append(self._current)
        self._current = self._raw = self._stream = None

    def close(self) -> list[Shard]:
        """Finish the last shard; returns all shards (still under their temporary names)."""
        self._close_shard()
        return self.shards

    def publish(self) -> list[Shard]:
        """Give every finished shard its final name."""
        for s in self.shards:
            publish(s.tmp, s.final)
        return self.shards

    def abort(self) -> None:
        """Remove the temporary files of a task that failed."""
        import fsspec

        try:
            self._close_shard()
        except Exception:  # the task already failed; removing its files is best effort
            pass
        for s in self.shards:
            fs, p = fsspec.core.url_to_fs(s.tmp)
            if fs.exists(p):
                fs.rm(p)
