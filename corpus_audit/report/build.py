"""Build a scan's prevalence report: counts from DuckDB, shares and intervals, then the files in ``DIR/report/``.

:func:`build_report` is the library call behind ``corpus-audit report``. It loads every annotation row
into ``audit.duckdb`` (table ``annotations``), computes the report tables there, stores them beside the
annotations, and writes ``report.json`` (the contract of DESIGN.md), ``report.md``, a self-contained
``index.html`` and PNG plots. Every file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from corpus_audit import __version__
from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import LABELS, UNNAMED_KEY
from corpus_audit.report import queries, stats
from corpus_audit.report.rates import Rates, resolve, scan_thresholds
from corpus_audit.storage import exists, join, open_output, publish, read_text

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
REPORT_FILES = ("index.html", "report.md", "report.json", "audit.duckdb")
REPORT_VERSION = 1

METHOD = {
    "share": "documents with the label / documents in the group; 95% Wilson score interval",
    "words_share": "words in documents with the label / words in the group; 95% Wilson interval at the effective "
                   "sample size of the ratio (delta-method variance; Kish's n_eff when the share is 0 or 1)",
    "adjusted": "Rogan-Gladen adjusted classify-and-count, one label against the rest: "
                "(raw share - fpr) / (tpr - fpr), clipped to [0, 1]; adjusted shares of the labels need not sum "
                "to 1",
    "adjusted_interval": {
        "bootstrap": "parametric bootstrap, 4000 draws, seed fixed: raw share, tpr and fpr each drawn from its "
                     "Jeffreys Beta distribution (includes the uncertainty of the measured rates)",
        "wilson-propagated": "the raw share's Wilson bounds carried through the same formula (rates taken as exact)",
    },
    "thresholds": "documents whose score for the label is at or above the threshold / documents; Wilson interval",
}


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _with_shares(counts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add document and word shares with their intervals to count rows (from :mod:`queries`)."""
    if not counts:
        return []
    col = {k: [r[k] for r in counts] for k in ("documents", "total", "words", "total_words", "words_sq",
                                                "total_words_sq")}
    share, lo, hi = stats.share_interval(col["documents"], col["total"])
    ws, wlo, whi = stats.weighted_share_interval(col["words"], col["total_words"], col["words_sq"],
                                                 col["total_words_sq"], col["total"])
    out = []
    for i, r in enumerate(counts):
        row = {k: v for k, v in r.items() if k not in ("words_sq", "total_words_sq")}
        row.update(share=float(share[i]), ci_low=float(lo[i]), ci_high=float(hi[i]), words_share=float(ws[i]),
                   words_ci_low=float(wlo[i]), words_ci_high=float(whi[i]))
        out.append(row)
    return out


def _counted_shares(rows: list[dict[str, Any]], key: str = "documents") -> list[dict[str, Any]]:
    """Add ``share`` (``row[key] / row["total"]``) and its Wilson interval to count rows."""
    if not rows:
        return []
    share, lo, hi = stats.share_interval([r[key] for r in rows], [r["total"] for r in rows])
    return [r | {"share": float(share[i]), "ci_low": float(lo[i]), "ci_high": float(hi[i])} for i, r in enumerate(rows)]


def _adjusted(prevalence: list[dict[str, Any]], rates: Rates) -> list[dict[str, Any]]:
    """Raw and adjusted share side by side, per source and label."""
    out = []
    for li, lab in enumerate(LABELS):
        rows = [r for r in prevalence if r["label"] == lab]
        if not rows:
            continue
        r8 = rates.by_label.get(lab)
        if r8 is None:
            est = lo = hi = [math.nan] * len(rows)
            method, note = "none", "no rate measured for this label"
        else:
            est, lo, hi, method = stats.adjusted_share([r["documents"] for r in rows], [r["total"] for r in rows],
                                                       r8, seed=li)
            note = "" if r8.usable else "tpr <= fpr: the classifier does not separate this label; no correction"
        for i, r in enumerate(rows):
            row_note = note
            if r8 is not None and r8.usable and not row_note:
                if r["share"] < r8.fpr:  # the correction is clipped: say why rather than print a bare 0
                    row_note = ("raw share below the measured fpr, adjusted share clipped to 0: the rates "
                                "probably do not hold for this source")
                elif r["share"] > r8.tpr:
                    row_note = ("raw share above the measured tpr, adjusted share clipped to 1: the rates "
                                "probably do not hold for this source")
            out.append({"source": r["source"], "label": lab, "documents": r["documents"], "total": r["total"],
                        "raw_share": r["share"], "raw_ci_low": r["ci_low"], "raw_ci_high": r["ci_high"],
                        "tpr": None if r8 is None else r8.tpr, "fpr": None if r8 is None else r8.fpr,
                        "adjusted_share": _finite(est[i]), "adjusted_ci_low": _finite(lo[i]),
                        "adjusted_ci_high": _finite(hi[i]), "interval": method, "note": row_note})
    return out


def _decision_thresholds(scan_record: Mapping[str, Any]) -> dict[str, float | None]:
    """The score at which the scan labels a document: ``misaligned_ai`` has one (default 0.5); the others
    are decided by the highest score, so they have none."""
    given = dict(scan_record.get("config", {}).get("thresholds") or {})
    out: dict[str, float | None] = dict.fromkeys(LABELS)
    out["misaligned_ai"] = float(given.get("misaligned_ai", 0.5))
    return out


def _unnamed_floor(scan_record: Mapping[str, Any]) -> float | None:
    """The ``misaligned_ai`` floor the scan applied to documents that name no artificial agent (see
    :func:`~corpus_audit.labels.decide`); ``None`` when scan.json records no thresholds."""
    return scan_thresholds(dict(scan_record.get("config", {}))).get(UNNAMED_KEY)


def _read_scan_record(scan_dir: str) -> tuple[dict[str, Any], list[str]]:
    path = join(scan_dir, "scan.json")
    if not exists(path):
        return {}, [f"no scan.json in {scan_dir}: scan counts, model and thresholds are unknown"]
    try:
        return json.loads(read_text(path)), []
    except (OSError, ValueError) as e:
        return {}, [f"scan.json in {scan_dir} is unreadable ({e}); scan counts, model and thresholds are unknown"]


def _scan_summary(scan_dir: str, record: Mapping[str, Any], files: Sequence[str], rows: int) -> dict[str, Any]:
    cfg = record.get("config", {})
    return {"path": scan_dir, "documents": record.get("documents"), "files": record.get("files"),
            "labels": record.get("labels"), "model": record.get("model"), "model_path": cfg.get("model"),
            "rules": record.get("rules"), "thresholds": cfg.get("thresholds"),
            "annotation_files": len(files), "annotation_rows": rows}


def _check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(sorted({float(t) for t in thresholds}))
    except (TypeError, ValueError) as e:
        raise AuditError(Errors.CA205, option="--thresholds", detail=f"not numbers ({e})") from e
    if not values or any(not (0.0 <= t <= 1.0) for t in values):
        raise AuditError(Errors.CA205, option="--thresholds", detail="give one or more scores between 0 and 1")
    return values


def build_report(scan_dir: str, *, output: str | None = None, top_domains: int = 20, eval_path: str | None = None,
                 model_metrics: dict[str, Any] | None = None, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 examples: int = 3, plots: bool = True) -> dict[str, Any]:
    """Build the prevalence report of the scan in ``scan_dir`` and return the content of ``report.json``.

    Args:
        scan_dir: folder written by ``corpus-audit scan`` (local path or fsspec URL), holding
            ``annotations/**/*.parquet`` and ``scan.json``.
        output: folder for the report files (default ``scan_dir/report``); local or fsspec URL.
        top_domains: how many domains (most documents first) get their own rows.
        eval_path: labelled JSONL to measure per-label tpr/fpr with the scan's model (else the model card).
        model_metrics: per-label rates to use instead (see :mod:`corpus_audit.report.rates`).
        thresholds: scores at which the share of flagged documents is reported, per label.
        examples: top-scoring evidence snippets kept per AI label and source.
        plots: draw the PNG plots (matplotlib); off, the report has tables only.

    Example::

        from corpus_audit.report import build_report
        rep = build_report("audit/")                      # writes audit/report/
        [r for r in rep["prevalence"] if r["source"] == "ALL" and r["label"] == "misaligned_ai"]
    """
    import duckdb

    thresholds = _check_thresholds(thresholds)
    if top_domains < 0 or examples < 0:
        raise AuditError(Errors.CA205, option="--top-domains/examples", detail="must not be negative")
    scan_dir = scan_dir.rstrip("/") or "/"
    out_dir = (output or join(scan_dir, "report")).rstrip("/")
    scan_record, notes = _read_scan_record(scan_dir)
    files, fs = queries.list_annotation_files(scan_dir)
    rates = resolve(scan_record, eval_path=eval_path, model_metrics=model_metrics)

    remote = "://" in out_dir and not out_dir.startswith("file://")
    local_dir = tempfile.mkdtemp(prefix="corpus-audit-report-") if remote else out_dir.removeprefix("file://")
    try:
        os.makedirs(local_dir, exist_ok=True)
    except OSError as e:
        raise AuditError(Errors.CA605, path=out_dir, detail=str(e)) from e
    db_tmp = os.path.join(local_dir, f".audit.duckdb.tmp{os.getpid()}")
    for leftover in (db_tmp, db_tmp + ".wal"):
        if os.path.exists(leftover):
            os.remove(leftover)
    try:
        con = duckdb.connect(db_tmp)
        try:
            n_rows = queries.load_annotations(con, files, fs=fs, scan_dir=scan_dir)
            report = _compute(con, scan_dir, scan_record, files, n_rows, rates, notes, thresholds=thresholds,
                              top_domains=top_domains, examples=examples)
            _store_tables(con, report)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        images = _plots(report) if plots else {}
        _publish(out_dir, local_dir, db_tmp, report, images, remote=remote)
    finally:
        for leftover in (db_tmp, db_tmp + ".wal"):
            if os.path.exists(leftover):
                os.remove(leftover)
        if remote:
            shutil.rmtree(local_dir, ignore_errors=True)
    return report


def _compute(con: Any, scan_dir: str, scan_record: dict[str, Any], files: Sequence[str], n_rows: int, rates: Rates,
             notes: list[str], *, thresholds: Sequence[float], top_domains: int, examples: int) -> dict[str, Any]:
    labels = queries.labels_present(con)
    prevalence = _with_shares(queries.prevalence_counts(con, labels))
    domains, domain_summary = queries.domain_counts(con, labels, top=top_domains)
    annotated = (scan_record.get("documents") or {}).get("annotated")
    if annotated is not None and annotated != n_rows:
        notes.append(f"scan.json counts {annotated} annotated documents but the annotation files hold {n_rows} rows; "
                     "the report counts the rows")
    if queries.ALL in queries.source_names(con):
        notes.append(f"a source is named {queries.ALL}; its rows cannot be told apart from the whole corpus's "
                     "(rename it with --source at scan time)")
    unknown = [lab for lab in labels if lab not in LABELS]
    if unknown:
        notes.append("labels outside LABELS.md in the annotations: " + ", ".join(unknown))
    decision = _decision_thresholds(scan_record)
    histograms = queries.score_histograms(con)
    for lab, h in histograms.items():
        h["threshold"] = decision[lab]
    return {
        "report_version": REPORT_VERSION,
        "corpus_audit_version": __version__,
        "labels": labels,
        "scan": _scan_summary(scan_dir, scan_record, files, n_rows),
        "method": METHOD,
        "prevalence": prevalence,
        "by_domain": _with_shares(domains),
        "domains": {"top": top_domains, **domain_summary},
        "by_file": _with_shares(queries.file_counts(con, labels)),
        "adjusted": {"rates_source": rates.source, "rates_kind": rates.kind, "rates": rates.as_dict(),
                     "rows": _adjusted(prevalence, rates) if rates.available else []},
        "thresholds": {"values": list(thresholds), "decision": decision,
                       "misaligned_ai_unnamed": _unnamed_floor(scan_record),
                       "rows": _counted_shares(queries.flagged_counts(con, labels, thresholds))},
        "histograms": histograms,
        "gate": {"rows": _counted_shares(queries.gate_counts(con), "gated"), "recall": rates.gate_recall,
                 "recall_source": rates.source if rates.gate_recall else None},
        "examples": queries.top_examples(con, labels, per_group=examples),
        "notes": notes,
    }


def _store_tables(con: Any, report: dict[str, Any]) -> None:
    """The report tables in ``audit.duckdb``, beside ``annotations``, typed even when empty."""
    import pyarrow as pa

    f64, i64, s = pa.float64(), pa.int64(), pa.string()
    shares = [("documents", i64), ("total", i64), ("share", f64), ("ci_low", f64), ("ci_high", f64)]
    words = [("words", i64), ("total_words", i64), ("words_share", f64), ("words_ci_low", f64),
             ("words_ci_high", f64)]
    tables = {
        "prevalence": (report["prevalence"], [("source", s), ("label", s), *shares, *words]),
        "by_domain": (report["by_domain"], [("domain", s), ("rank", i64), ("label", s), *shares, *words]),
        "by_file": (report["by_file"], [("file", s), ("label", s), *shares, *words]),
        "adjusted": (report["adjusted"]["rows"], [
            ("source", s), ("label", s), ("documents", i64), ("total", i64), ("raw_share", f64),
            ("raw_ci_low", f64), ("raw_ci_high", f64), ("tpr", f64), ("fpr", f64), ("adjusted_share", f64),
            ("adjusted_ci_low", f64), ("adjusted_ci_high", f64), ("interval", s), ("note", s)]),
        "threshold_sensitivity": (report["thresholds"]["rows"],
                                  [("source", s), ("label", s), ("threshold", f64), *shares]),
        "gate": (report["gate"]["rows"], [("source", s), ("gated", i64), ("total", i64), ("share", f64),
                                          ("ci_low", f64), ("ci_high", f64)]),
        "examples": (report["examples"], [("source", s), ("label", s), ("rank", i64), ("score", f64), ("id", s),
                                          ("file", s), ("row", i64), ("domain", s), ("evidence", s)]),
    }
    for name, (rows, fields) in tables.items():
        schema = pa.schema(fields)
        queries.store_table(con, name, [{k: r.get(k) for k in schema.names} for r in rows], schema)
    hist = []
    for lab, h in report["histograms"].items():
        for b, n in enumerate(h["counts"]):
            hist.append({"label": lab, "bin_low": b / h["bins"], "bin_high": (b + 1) / h["bins"], "documents": n})
    queries.store_table(con, "score_histograms", hist, pa.schema([("label", s), ("bin_low", f64), ("bin_high", f64),
                                                                  ("documents", i64)]))


def _plots(report: dict[str, Any]) -> dict[str, bytes]:
    from corpus_audit.report import render

    return render.plots(report)


def _publish(out_dir: str, local_dir: str, db_tmp: str, report: dict[str, Any], images: dict[str, bytes], *,
             remote: bool) -> None:
    """Write every report file under a temporary name, then rename; ``report.json`` goes last.

    A local report is written in ``local_dir`` (which is ``out_dir``); a remote one is uploaded to ``out_dir``.
    """
    from corpus_audit.report import render

    files = {
        **images,
        "report.md": render.markdown(report, list(images)).encode("utf-8"),
        "index.html": render.html(report, images).encode("utf-8"),
        "report.json": (json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"),
    }
    base = out_dir if remote else local_dir
    try:
        if remote:
            tmp = join(base, f".audit.duckdb.tmp{os.getpid()}")
            with open(db_tmp, "rb") as src, open_output(tmp) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            publish(tmp, join(base, "audit.duckdb"))
        else:
            os.replace(db_tmp, join(base, "audit.duckdb"))
        for name, data in files.items():
            tmp = join(base, f".{name}.tmp{os.getpid()}")
            with open_output(tmp) as fh:
                fh.write(data)
            publish(tmp, join(base, name))
        if not remote:  # a plot an earlier report drew and this one did not (adjusted.png without rates)
            for name in set(render.plot_names()) - set(images):
                if os.path.exists(join(base, name)):
                    os.remove(join(base, name))
    except OSError as e:
        raise AuditError(Errors.CA605, path=out_dir, detail=str(e)) from e
