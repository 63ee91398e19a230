"""Per-task accounting: documents read and rejected, files read and quarantined, and progress.

Every task writes ``ledger/NNNNN.json`` (counts) and ``rejected/NNNNN.jsonl`` (one line per
rejected record or quarantined file) when it finishes, each atomically, so a killed task leaves
nothing that looks finished. ``scan`` adds the ledgers of all tasks into ``scan.json``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corpus_audit.errors import AuditError
from corpus_audit.storage import atomic_write_text, open_output, publish

if TYPE_CHECKING:
    from corpus_audit.readers import InputFile

PROGRESS_EVERY = 4096  # documents between progress-file updates


@dataclass
class LedgerCounts:
    """What one task (or, summed, the whole run) read."""

    read: int = 0
    rejected: int = 0
    files_read: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)


class TaskLedger:
    """Counts one task's records; see the module docstring for the files it writes."""

    def __init__(self, folder: str, rank: int) -> None:
        self.folder = folder
        self.rank = rank
        self.counts = LedgerCounts()
        self._rejects_path = os.path.join(folder, "rejected", f"{rank:05d}.jsonl")
        self._rejects = open_output(self._rejects_path + ".tmp", "wt")
        self._progress_path = os.path.join(folder, "progress", f"{rank:05d}.json")
        self._bytes_done = 0
        self._chars = 0
        self._current: InputFile | None = None
        self._last_progress = 0.0

    # records -------------------------------------------------------------------------------
    def document_read(self, n_chars: int = 0) -> None:
        c = self.counts
        c.read += 1
        self._chars += n_chars
        if c.read % PROGRESS_EVERY == 0:
            self._write_progress()

    def reject(self, f: InputFile, row: int, reason: str, err: AuditError) -> None:
        c = self.counts
        c.read += 1
        c.rejected += 1
        c.reasons[reason] = c.reasons.get(reason, 0) + 1
        self._rejects.write(json.dumps({"kind": "record", "file": f.path, "line": row + 1, "row": row,
                                        "reason": reason, "code": err.code, "message": err.message}) + "\n")

    # files ---------------------------------------------------------------------------------
    def file_started(self, f: InputFile) -> None:
        self._current = f

    def file_finished(self, f: InputFile) -> None:
        self.counts.files_read += 1
        self._bytes_done += f.size
        self._current = None

    def quarantine(self, f: InputFile, records_before: int, err: AuditError) -> None:
        """The file's stream broke: keep what was read before, name the file, read nothing more of it."""
        entry = {"kind": "file", "file": f.path, "records_read_before_error": records_before,
                 "reason": "quarantined", "code": err.code, "message": err.message}
        self.counts.quarantined.append(entry)
        self._rejects.write(json.dumps(entry) + "\n")

    # end of task ---------------------------------------------------------------------------
    def _write_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < 0.5:
            return
        self._last_progress = now
        atomic_write_text(self._progress_path, json.dumps(
            {"documents": self.counts.read, "chars": self._chars, "input_bytes": self._bytes_done}))

    def close(self) -> None:
        self._rejects.close()
        publish(self._rejects_path + ".tmp", self._rejects_path)
        c = self.counts
        atomic_write_text(os.path.join(self.folder, "ledger", f"{self.rank:05d}.json"), json.dumps({
            "read": c.read, "rejected": c.rejected, "files_read": c.files_read,
            "quarantined": c.quarantined, "reasons": c.reasons}, sort_keys=True))
        atomic_write_text(self._progress_path, json.dumps(
            {"documents": c.read, "chars": self._chars, "input_bytes": self._bytes_done, "done": True}))


def sum_ledgers(folder: str, ranks: range) -> LedgerCounts:
    """Add the ledgers of the given tasks (all must exist: the tasks completed)."""
    from corpus_audit.storage import read_text

    total = LedgerCounts()
    for rank in ranks:
        d = json.loads(read_text(os.path.join(folder, "ledger", f"{rank:05d}.json")))
        total.read += d["read"]
        total.rejected += d["rejected"]
        total.files_read += d["files_read"]
        total.quarantined += d["quarantined"]
        for k, v in d["reasons"].items():
            total.reasons[k] = total.reasons.get(k, 0) + v
    return total
