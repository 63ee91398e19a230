"""A one-line progress display on a terminal: documents, MB/s of text, share of input done, ETA.

Tasks write small progress files (see :mod:`corpus_audit.ledger`); this thread adds them up, so it
works for worker processes as well as for tasks run in the main process.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import threading
import time
from typing import TextIO


class Progress:
    """Context manager that redraws a status line every ``interval`` seconds while a scan runs."""

    def __init__(self, folder: str, total_bytes: int, *, enabled: bool, stream: TextIO = sys.stderr,
                 interval: float = 0.5) -> None:
        self.folder = folder
        self.total = max(1, total_bytes)
        self.enabled = enabled
        self.stream = stream
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0
        self._baseline: tuple[int, int, int] | None = None

    def _totals(self) -> tuple[int, int, int]:
        docs = chars = done = 0
        for p in glob.glob(os.path.join(self.folder, "progress", "*.json")):
            try:
                with open(p, encoding="utf-8") as fh:
                    d = json.load(fh)
            except (OSError, ValueError):
                continue  # being replaced right now
            docs += d.get("documents", 0)
            chars += d.get("chars", 0)
            done += d.get("input_bytes", 0)
        return docs, chars, done

    def line(self) -> str:
        docs, chars, done = self._totals()
        b_docs, b_chars, b_done = self._baseline or (0, 0, 0)
        elapsed = max(1e-6, time.monotonic() - self._start)
        rate = (chars - b_chars) / elapsed / 1e6
        frac = min(1.0, done / self.total)
        new_frac = max(0.0, (done - b_done) / self.total)
        eta = "--:--"
        if 0 < new_frac < 1:
            secs = elapsed * (1 - frac) / new_frac
            eta = f"{int(secs // 60):d}:{int(secs % 60):02d}"
        return f"scan: {docs:,} docs | {rate:.1f} MB/s | {frac:.0%} of input | ETA {eta}"

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.stream.write("\r" + self.line().ljust(72))
            self.stream.flush()

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if self.enabled:
            self._baseline = self._totals()  # a resumed run counts only its own work in the rate
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r" + self.line().ljust(72) + "\n")
            self.stream.flush()
