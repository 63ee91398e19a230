"""Input discovery and format detection, and a datatrove reader that accounts for every record.

datatrove's own readers skip malformed lines silently, abandon a file at invalid UTF-8 and crash on
a truncated gzip. :class:`ShardReader` reads the same formats but counts every record as either a
document or a rejection (with file, line and reason), and quarantines a file whose stream breaks
while keeping the documents read before the break.
"""

from __future__ import annotations

import glob as globlib
import gzip
import importlib
import io
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import fsspec
import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader

from corpus_audit.errors import AuditError, Errors
from corpus_audit.ledger import TaskLedger

# format name -> file name endings
FORMATS: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz", ".jsonl.zst", ".json.zst",
              ".jsonl.zstd", ".ndjson.zst"),
    "parquet": (".parquet", ".pq"),
    "warc": (".warc", ".warc.gz", ".wet", ".wet.gz", ".warc.wet.gz", ".arc.gz"),
}
# codec -> (module to import, package to install)
CODECS: dict[str, tuple[str, str]] = {
    "zstd": ("zstandard", "zstandard"),
    "parquet": ("pyarrow.parquet", "pyarrow"),
    "warc": ("warcio", "warcio"),
}


@dataclass(frozen=True)
class InputFile:
    """One input file: its path or URL, its format and codec, and the source it is reported under."""

    path: str
    format: str
    compression: str | None
    folder: str
    size: int


def detect_format(path: str) -> tuple[str, str | None]:
    """Return ``(format, compression)`` from a file name, e.g. ``("jsonl", "gzip")``.

    >>> detect_format("shards/part-0.jsonl.zst")
    ('jsonl', 'zstd')
    """
    name = path.lower()
    for fmt, endings in FORMATS.items():
        if name.endswith(endings):
            if fmt == "warc":
                return fmt, "gzip" if name.endswith(".gz") else None
            if name.endswith(".gz"):
                return fmt, "gzip"
            if name.endswith((".zst", ".zstd")):
                return fmt, "zstd"
            return fmt, None
    raise AuditError(Errors.CA108, file=path)


def _is_data_file(path: str) -> bool:
    base = os.path.basename(path)
    return not base.startswith((".", "_")) and base.lower().endswith(sum(FORMATS.values(), ()))


def discover_inputs(inputs: list[str] | tuple[str, ...]) -> list[InputFile]:
    """Expand files, folders and globs (local paths or fsspec URLs) into a sorted list of input files.

    Folders are searched recursively for files with a known ending; hidden files are skipped.
    The order is deterministic (sorted by path), so tasks get the same files on every run.
    """
    found: dict[str, InputFile] = {}
    for spec in inputs:
        fs, _, paths = fsspec.get_fs_token_paths(spec)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        remote = protocol not in ("file", "local")
        candidates: list[str] = []
        for p in paths if any(c in spec for c in "*?[") else [paths[0] if paths else spec]:
            if fs.isdir(p):
                candidates += [f for f in fs.find(p) if _is_data_file(f)]
            elif fs.exists(p):
                candidates.append(p)
        for p in candidates:
            url = f"{protocol}://{p}" if remote else os.path.abspath(p)
            if url in found:
                continue
            fmt, comp = detect_format(url)
            size = fs.size(p) or 0
            folder = os.path.basename(os.path.dirname(p.rstrip("/"))) or "root"
            found[url] = InputFile(url, fmt, comp, folder, int(size))
    if not found:
        raise AuditError(Errors.CA101, inputs=", ".join(inputs) or "(nothing)")
    return [found[k] for k in sorted(found)]


def check_codecs(files: list[InputFile]) -> None:
    """Fail before any work starts when a codec the inputs need is not importable (CA109)."""
    needed: dict[str, InputFile] = {}
    for f in files:
        for key in (f.compression, f.format):
            if key in CODECS and key not in needed:
                needed[key] = f
    for key, f in needed.items():
        module, package = CODECS[key]
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise AuditError(Errors.CA109, file=f.path, module=module, package=package, detail=str(e)) from e


def _gzip_reader(raw: IO[bytes]) -> IO[bytes]:
    try:  # python-isal decompresses gzip about 2-3x faster than zlib
        from isal import igzip

        return igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    except ImportError:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]


def open_binary(path: str, compression: str | None) -> tuple[IO[bytes], IO[bytes]]:
    """Open ``path`` for binary reading, decompressed; returns ``(stream, raw file)``."""
    raw = fsspec.open(path, "rb").open()
    if compression == "gzip":
        return _gzip_reader(raw), raw
    if compression == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(reader, buffer_size=1 << 20), raw  # line iteration needs a buffered reader
    return raw, raw


# errors a broken compressed stream raises while we iterate it
STREAM_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile, OSError)
try:
    import zstandard as _zstd

    STREAM_ERRORS = (*STREAM_ERRORS, _zstd.ZstdError)
except ImportError:  # pragma: no cover - zstandard is a dependency
    pass


@dataclass
class SourceSpec:
    """How a document's source is named: the input folder, a metadata field, or a fixed name."""

    kind: str = "folder"
    value: str = ""

    @classmethod
    def parse(cls, text: str | None) -> SourceSpec:
        if not text or text == "folder":
            return cls("folder")
        kind, sep, value = text.partition(":")
        if sep and kind in ("field", "name") and value:
            return cls(kind, value)
        raise AuditError(Errors.CA204, value=text)

    def name(self, file: InputFile, record: dict[str, Any]) -> str:
        if self.kind == "name":
            return self.value
        if self.kind == "field":
            v = record.get(self.value)
            if v is None and isinstance(record.get("metadata"), dict):
                v = record["metadata"].get(self.value)
            return str(v) if v not in (None, "") else "unknown"
        return file.folder


def domain_of(url: object) -> str | None:
    """Host of a URL, lower-cased, without a leading ``www.``; None when there is no URL."""
    if not isinstance(url, str) or "//" not in url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


class ShardReader(BaseReader):
    """Read this task's share of the input files into Documents, counting every record.

    Files are assigned to tasks round-robin over the sorted file list. Each Document's metadata holds
    ``file``, ``row``, ``source`` and ``domain`` for the annotation row. Rejected records and
    quarantined files are written to the task's :class:`TaskLedger`.

    Args:
        files: the input files of the whole run (from :func:`discover_inputs`).
        ledger_dir: folder for the per-task ledgers (counts and rejected records).
        text_key, id_key, url_key: field names in the input records.
        source: how to name a document's source (:class:`SourceSpec`).
        limit: stop after this many documents per task (-1: no limit).
        max_doc_bytes: reject documents whose text is longer than this (UTF-8 bytes).
        invalid_utf8: "reject" a line with invalid UTF-8, or "replace" bad bytes with U+FFFD.
    """

    name = "📖 corpus-audit reader"
    type = "📖 - READER"
    # Parquet: read only the columns a Document needs; a subclass that re-writes whole records sets True
    read_all_columns: bool = False

    def __init__(
        self,
        files: list[InputFile],
        *,
        ledger_dir: str,
        text_key: str = "text",
        id_key: str = "id",
        url_key: str = "url",
        source: SourceSpec | None = None,
        limit: int = -1,
        max_doc_bytes: int = 64 * 1024 * 1024,
        invalid_utf8: str = "reject",
    ) -> None:
        super().__init__(limit=limit, text_key=text_key, id_key=id_key)
        self.files = files
        self.ledger_dir = ledger_dir
        self.url_key = url_key
        self.source = source or SourceSpec()
        self.max_doc_bytes = max_doc_bytes
        self.invalid_utf8 = invalid_utf8
        self.ledger: TaskLedger | None = None

    def files_for_task(self, rank: int, world_size: int) -> list[InputFile]:
        return self.files[rank::world_size]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        ledger = TaskLedger(self.ledger_dir, rank)
        self.ledger = ledger
        produced = 0
        for f in self.files_for_task(rank, world_size):
            ledger.file_started(f)
            self.stat_update("input_files")
            for doc in self.read_file(f, ledger):
                yield doc
                produced += 1
                if self.limit != -1 and produced >= self.limit:
                    break
            ledger.file_finished(f)
            if self.limit != -1 and produced >= self.limit:
                break
        ledger.close()

    # --- per format -------------------------------------------------------------------------
    def read_file(self, f: InputFile, ledger: TaskLedger) -> Iterator[Document]:
        if f.format == "jsonl":
            yield from self._read_jsonl(f, ledger)
        elif f.format == "parquet":
            yield from self._read_parquet(f, ledger)
        else:
            yield from self._read_warc(f, ledger)

    def _make_document(self, f: InputFile, row: int, record: dict[str, Any], ledger: TaskLedger) -> Document | None:
        text = record.get(self.text_key)
        if not isinstance(text, str):
            detail = "missing" if text is None else f"a {type(text).__name__}, not a string"
            ledger.reject(f, row, "missing_text", AuditError(Errors.CA105, file=f.path, line=row + 1,
                                                               key=self.text_key, detail=detail))
            return None
        if len(text) > self.max_doc_bytes // 4 and len(text.encode("utf-8")) > self.max_doc_bytes:
            ledger.reject(f, row, "oversized", AuditError(Errors.CA106, file=f.path, line=row + 1,
                                                            detail=len(text.encode("utf-8"))))
            return None
        doc_id = record.get(self.id_key)
        doc_id = str(doc_id) if doc_id not in (None, "") else f"{f.path}#{row}"
        metadata = {
            "file": f.path,
            "row": row,
            "source": self.source.name(f, record),
            "domain": domain_of(record.get(self.url_key)),
        }
        ledger.document_read(len(text))
        return Document(text=text, id=doc_id, metadata=metadata)

    def _read_jsonl(self, f: InputFile, ledger: TaskLedger) -> Iterator[Document]:
        stream, _raw = open_binary(f.path, f.compression)
        row = -1
        try:
            with stream:
                for row, line in enumerate(stream):
                    if not line.strip():
                        ledger.reject(f, row, "blank_line", AuditError(Errors.CA102, file=f.path, line=row + 1,
                                                                         detail="blank line"))
                        continue
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError as e:
                        record = self._recover_line(f, row, line, e, ledger)
                        if record is None:
                            continue
                    if not isinstance(record, dict):
                        ledger.reject(f, row, "not_an_object", AuditError(Errors.CA111, file=f.path, line=row + 1,
                                                                            detail=type(record).__name__))
                        continue
                    doc = self._make_document(f, row, record, ledger)
                    if doc is not None:
                        yield doc
        except STREAM_ERRORS as e:
            ledger.quarantine(f, row + 1, AuditError(Errors.CA104, file=f.path, line=row + 1, detail=str(e) or type(e).__name__))

    def _recover_line(self, f: InputFile, row: int, line: bytes, err: Exception,
                      ledger: TaskLedger) -> dict[str, Any] | None:
        """A line orjson refused: tell invalid UTF-8 from malformed JSON, and replace bad bytes if asked."""
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as u:
            if self.invalid_utf8 == "replace":
                try:
                    return orjson.loads(line.decode("utf-8", errors="replace"))
                except orjson.JSONDecodeError as e2:
                    err = e2
            else:
                ledger.reject(f, row, "invalid_utf8", AuditError(Errors.CA103, file=f.path, line=row + 1, detail=u.start))
                return None
        ledger.reject(f, row, "malformed_json", AuditError(Errors.CA102, file=f.path, line=row + 1, detail=str(err)))
        return None

    def _read_parquet(self, f: InputFile, ledger: TaskLedger) -> Iterator[Document]:
        import pyarrow.parquet as pq

        row = 0
        try:
            with fsspec.open(f.path, "rb") as fh:
                pf = pq.ParquetFile(fh)
                names = set(pf.schema_arrow.names)
                wanted = [c for c in (self.text_key, self.id_key, self.url_key) if c in names]
                if self.source.kind == "field" and self.source.value in names:
                    wanted.append(self.source.value)
                selected = None if self.read_all_columns else (wanted or None)
                for batch in pf.iter_batches(batch_size=2048, columns=selected):
                    columns = {name: batch.column(name).to_pylist() for name in batch.schema.names}
                    for i in range(batch.num_rows):
                        record = {name: values[i] for name, values in columns.items()}
                        doc = self._make_document(f, row, record, ledger)
                        row += 1
                        if doc is not None:
                            yield doc
        except (OSError, ValueError, EOFError) as e:
            code = Errors.CA107 if row == 0 else Errors.CA104
            ledger.quarantine(f, row, AuditError(code, file=f.path, line=row, detail=str(e)))

    def _read_warc(self, f: InputFile, ledger: TaskLedger) -> Iterator[Document]:
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        from corpus_audit.html_text import html_to_text

        index = -1
        try:
            with fsspec.open(f.path, "rb") as raw:
                for index, record in enumerate(ArchiveIterator(raw)):
                    if record.rec_type not in ("conversion", "resource", "response"):
                        continue  # warcinfo, request, metadata: not documents
                    ctype = (record.rec_headers.get_header("Content-Type") or "").lower()
                    payload = record.content_stream().read()
                    if record.rec_type == "response":
                        http_type = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
                        if "html" not in http_type.lower() and "text/plain" not in http_type.lower():
                            continue  # images, scripts, PDFs: no text documents
                        text_bytes, is_html = payload, "html" in http_type.lower()
                    elif "text" not in ctype and record.rec_type == "resource":
                        continue
                    else:
                        text_bytes, is_html = payload, False
                    try:
                        text = text_bytes.decode("utf-8")
                    except UnicodeDecodeError as u:
                        if self.invalid_utf8 != "replace":
                            ledger.reject(f, index, "invalid_utf8",
                                          AuditError(Errors.CA103, file=f.path, line=index + 1, detail=u.start))
                            continue
                        text = text_bytes.decode("utf-8", errors="replace")
                    if is_html:
                        text = html_to_text(text)
                    rec = {
                        self.text_key: text,
                        self.id_key: record.rec_headers.get_header("WARC-Record-ID"),
                        self.url_key: record.rec_headers.get_header("WARC-Target-URI"),
                    }
                    doc = self._make_document(f, index, rec, ledger)
                    if doc is not None:
                        yield doc
        except (ArchiveLoadFailed, *STREAM_ERRORS) as e:
            ledger.quarantine(f, index + 1, AuditError(Errors.CA110, file=f.path, line=index + 1, detail=str(e)))


def iter_records(path: str, *, text_key: str = "text") -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSON Lines file (plain, .gz or .zst): for training and evaluation data."""
    _fmt, comp = detect_format(path)
    stream, _ = open_binary(path, comp)
    with stream:
        for lineno, line in enumerate(stream):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise AuditError(Errors.CA102, file=path, line=lineno + 1, detail=str(e)) from e
            if not isinstance(rec, dict) or not isinstance(rec.get(text_key), str):
                raise AuditError(Errors.CA105, file=path, line=lineno + 1, key=text_key, detail="missing or not a string")
            yield rec


def expand_paths(specs: list[str] | tuple[str, ...]) -> list[str]:
    """Local glob expansion for small auxiliary inputs (training data, eval sets)."""
    out: list[str] = []
    for s in specs:
        if os.path.isdir(s):
            out += sorted(p for p in globlib.glob(os.path.join(s, "**", "*"), recursive=True) if _is_data_file(p))
        else:
            out += sorted(globlib.glob(s)) or [s]
    return out
