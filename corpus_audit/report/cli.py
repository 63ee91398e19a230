"""The ``corpus-audit report`` command: a thin shell over :func:`corpus_audit.report.build_report`.

Imports only click at module level, so ``corpus-audit --help`` does not load DuckDB or matplotlib.
"""

from __future__ import annotations

import sys
import time

import click

from corpus_audit.errors import AuditError, Errors

DEFAULT_THRESHOLDS = "0.3,0.5,0.7,0.8,0.9,0.95"


def _parse_thresholds(value: str) -> list[float]:
    try:
        return [float(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError as e:
        raise AuditError(Errors.CA205, option="--thresholds", detail=f"{value!r} is not a comma-separated list of "
                         "scores between 0 and 1") from e


@click.command("report")
@click.argument("scan_dir", metavar="DIR")
@click.option("--top-domains", default=20, show_default=True, type=click.IntRange(min=0),
              help="domains (most documents first) that get their own rows")
@click.option("--eval", "eval_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="labelled JSONL (text, label) to measure per-label tpr/fpr with the scan's own model; "
                   "default: the model's metrics.json")
@click.option("--thresholds", default=DEFAULT_THRESHOLDS, show_default=True,
              help="comma-separated scores at which the flagged share is reported")
@click.option("--examples", default=3, show_default=True, type=click.IntRange(min=0),
              help="top-scoring evidence snippets shown per AI label and source")
@click.option("-o", "--output", default=None, help="report folder (default: DIR/report)")
def report(scan_dir: str, top_domains: int, eval_path: str | None, thresholds: str, examples: int,
           output: str | None) -> None:
    """Prevalence of each label by source, domain and input file, from the annotations in DIR (a scan folder).

    Writes DIR/report/: index.html (self-contained), report.md, report.json, audit.duckdb (the annotations and
    the report tables, for SQL) and PNG plots. Shares come with 95% intervals, raw (the classifier's labels
    counted) and adjusted (corrected with the classifier's measured tpr/fpr), side by side.
    """
    from corpus_audit.report import build_report

    t0 = time.monotonic()
    try:
        rep = build_report(scan_dir, output=output, top_domains=top_domains, eval_path=eval_path,
                           thresholds=_parse_thresholds(thresholds), examples=examples)
    except AuditError as e:
        click.echo(f"error {e}", err=True)
        sys.exit(2)
    out = output or f"{scan_dir.rstrip('/')}/report"
    n_sources = len({r["source"] for r in rep["prevalence"]}) - 1
    click.echo(f"{rep['scan']['annotation_rows']:,} documents from {n_sources} source(s) in "
               f"{rep['scan']['annotation_files']} annotation files ({time.monotonic() - t0:.1f}s)")
    adjusted = {(r["source"], r["label"]): r for r in rep["adjusted"]["rows"]}
    for r in rep["prevalence"]:
        if r["label"] != "misaligned_ai":
            continue
        line = (f"  misaligned_ai in {r['source']}: raw {r['documents']:,}/{r['total']:,} = {100 * r['share']:.3g}% "
                f"[{100 * r['ci_low']:.3g}%, {100 * r['ci_high']:.3g}%]")
        a = adjusted.get((r["source"], "misaligned_ai"))
        if a and a["adjusted_share"] is not None:
            line += (f"; adjusted {100 * a['adjusted_share']:.3g}% "
                     f"[{100 * a['adjusted_ci_low']:.3g}%, {100 * a['adjusted_ci_high']:.3g}%]")
        click.echo(line)
    click.echo(f"rates: {rep['adjusted']['rates_source']}")
    for note in rep["notes"]:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {out}/index.html, report.md, report.json, audit.duckdb and plots")
