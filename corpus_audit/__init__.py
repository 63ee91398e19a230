"""corpus-audit: find narratives of evil, self-preserving AI in pretraining corpora, measure them, and filter them."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from corpus_audit.config import ScanConfig  # noqa: E402
from corpus_audit.errors import AuditError  # noqa: E402
from corpus_audit.labels import LABELS  # noqa: E402

_LAZY = {"scan": "corpus_audit.scanner", "ScanResult": "corpus_audit.scanner", "explain": "corpus_audit.explain"}


def __getattr__(name: str) -> Any:
    """Import the heavy parts (datatrove, fastText, Hyperscan) only when they are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["LABELS", "AuditError", "ScanConfig", "ScanResult", "__version__", "explain", "scan"]
