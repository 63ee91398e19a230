"""Reading whole input records with the scan's own (file, row) numbering, and a ledger that only counts.

:class:`RecordReader` is :class:`~corpus_audit.readers.ShardReader` with one difference: each Document also
carries the full input record (every field, every Parquet column) in ``metadata["record"]``, so emit can
write the record back out. Rows, ids and rejections are exactly the scan's, because the per-format reading
is the scan's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datatrove.data import Document

from corpus_audit.errors import AuditError
from corpus_audit.ledger import LedgerCounts, TaskLedger
from corpus_audit.readers import InputFile, ShardReader


class CountingLedger(TaskLedger):
    """A :class:`TaskLedger` that counts rejected records and quarantined files and writes nothing.

    ``scan`` already listed every rejected record in ``rejected.jsonl``; emit only needs the counts.
    """

    def __init__(self) -> None:  # no files: TaskLedger's own __init__ opens its rejects file
        self.counts = LedgerCounts()

    def document_read(self, n_chars: int = 0) -> None:
        self.counts.read += 1

    def reject(self, f: InputFile, row: int, reason: str, err: AuditError) -> None:
        c = self.counts
        c.read += 1
        c.rejected += 1
        c.reasons[reason] = c.reasons.get(reason, 0) + 1

    def quarantine(self, f: InputFile, records_before: int, err: AuditError) -> None:
        self.counts.quarantined.append({"file": f.path, "records_read_before_error": records_before,
                                        "code": err.code, "message": err.message})

    def close(self) -> None:
        pass


class RecordReader(ShardReader):
    """A ShardReader whose Documents keep their whole input record in ``metadata["record"]``."""

    read_all_columns = True

    def __init__(self, *, text_key: str = "text", id_key: str = "id", url_key: str = "url",
                 max_doc_bytes: int = 64 * 1024 * 1024, invalid_utf8: str = "reject") -> None:
        super().__init__([], ledger_dir="", text_key=text_key, id_key=id_key, url_key=url_key,
                         max_doc_bytes=max_doc_bytes, invalid_utf8=invalid_utf8)

    def _make_document(self, f: InputFile, row: int, record: dict[str, Any], ledger: TaskLedger) -> Document | None:
        doc = super()._make_document(f, row, record, ledger)
        if doc is not None:
            doc.metadata["record"] = record
        return doc

    def documents(self, f: InputFile, ledger: TaskLedger) -> Iterator[Document]:
        """The documents of one file, in row order; rejections and a broken stream go to ``ledger``."""
        return self.read_file(f, ledger)

    @classmethod
    def from_scan_config(cls, config: dict[str, Any]) -> RecordReader:
        """A reader with the options the scan used, so that rows and rejections match its annotations."""
        return cls(text_key=config.get("text_key", "text"), id_key=config.get("id_key", "id"),
                   url_key=config.get("url_key", "url"),
                   max_doc_bytes=int(config.get("max_doc_bytes", 64 * 1024 * 1024)),
                   invalid_utf8=config.get("invalid_utf8", "reject"))


def parquet_source(path: str) -> str | None:
    """``path`` when pyarrow can open it natively (a local file), else None (open it through fsspec).

    Reading Parquet through a Python file object leaves buffers that need the GIL when pyarrow's IO
    threads release them; if that happens while the interpreter exits, the process aborts ("terminate
    called without an active exception", apache/arrow#34314). Native files avoid it.
    """
    if path.startswith("file://"):
        return path[len("file://"):]
    return None if "://" in path else path


def read_parquet_schema(path: str) -> Any:
    """The Arrow schema of a Parquet file (local or fsspec URL)."""
    import fsspec
    import pyarrow.parquet as pq

    local = parquet_source(path)
    if local is not None:
        return pq.read_schema(local)
    with fsspec.open(path, "rb") as fh:
        return pq.read_schema(fh)


def read_parquet_table(path: str) -> Any:
    """A whole (small) Parquet file as an Arrow table (local or fsspec URL)."""
    import fsspec
    import pyarrow.parquet as pq

    local = parquet_source(path)
    if local is not None:
        with pq.ParquetFile(local) as pf:
            return pf.read()
    with fsspec.open(path, "rb") as fh:
        return pq.ParquetFile(fh).read(use_threads=False)
