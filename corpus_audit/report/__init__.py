"""The prevalence report: ``build_report(scan_dir)`` turns a scan's annotation rows into DIR/report/.

Modules: :mod:`~corpus_audit.report.queries` (DuckDB SQL over the annotations),
:mod:`~corpus_audit.report.stats` (intervals and adjusted prevalence), :mod:`~corpus_audit.report.rates`
(where per-label tpr/fpr come from), :mod:`~corpus_audit.report.render` (markdown, HTML, PNG plots),
:mod:`~corpus_audit.report.build` (the whole report), :mod:`~corpus_audit.report.cli` (the command).

Example::

    from corpus_audit.report import build_report
    report = build_report("audit/", top_domains=20, thresholds=(0.5, 0.8, 0.9))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real import is lazy, below
    from corpus_audit.report.build import DEFAULT_THRESHOLDS, build_report

__all__ = ["DEFAULT_THRESHOLDS", "build_report"]


def __getattr__(name: str) -> Any:
    """Import DuckDB and numpy only when a report is built, so ``corpus-audit --help`` stays fast."""
    if name in __all__:
        from corpus_audit.report import build

        return getattr(build, name)
    raise AttributeError(name)
