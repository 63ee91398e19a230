"""DuckDB SQL over a scan's annotation rows: finding the files, loading them, and the report's count tables.

The annotation files are listed the way datatrove lists a folder (``get_datafolder``, so local paths,
``s3://``, ``hf://`` and other fsspec URLs all work); for a remote folder the fsspec filesystem is
registered with DuckDB, which then reads the Parquet files through it. Everything here returns counts;
shares and intervals are computed by :mod:`corpus_audit.report.stats`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import LABELS

ALL = "ALL"  # the source (and file) name of the whole corpus
NO_SOURCE = "(none)"
REQUIRED_COLUMNS = ("source", "file", "domain", "n_words", "gated", "label", *(f"score_{lab}" for lab in LABELS))
HISTOGRAM_BINS = 50


def list_annotation_files(scan_dir: str) -> tuple[list[str], Any]:
    """The annotation Parquet files of a scan (``scan_dir/annotations/**/*.parquet``) and their filesystem.

    Returns full paths (local) or URLs (remote), sorted, and the fsspec filesystem DuckDB must read
    them through (None for local files). Hidden files (a task's unfinished ``.NNNNN.parquet.tmp``) are
    left out. Raises CA601 when there are none.
    """
    from datatrove.io import get_datafolder

    folder = get_datafolder(scan_dir)
    try:
        rel = folder.list_files("annotations", recursive=True, glob_pattern="**/*.parquet")
    except FileNotFoundError:
        rel = []
    rel = [p for p in rel if not os.path.basename(p).startswith(".")]
    if not rel:
        raise AuditError(Errors.CA601, path=scan_dir.rstrip("/"))
    files = sorted(set(folder.resolve_paths(rel)))
    return files, (None if folder.is_local() else folder.fs)


def load_annotations(con: Any, files: Sequence[str], *, fs: Any = None, scan_dir: str = "") -> int:
    """Create the table ``annotations`` from ``files`` (every row and column kept); return its row count."""
    if fs is not None:
        con.register_filesystem(fs)
    try:
        con.execute("CREATE OR REPLACE TABLE annotations AS SELECT * FROM read_parquet(?, union_by_name = true)",
                    [list(files)])
    except Exception as e:  # duckdb raises its own IOException/InvalidInputException family
        raise AuditError(Errors.CA602, path=scan_dir, detail=f"{type(e).__name__}: {e}".splitlines()[0]) from e
    columns = {r[0] for r in con.execute("DESCRIBE annotations").fetchall()}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise AuditError(Errors.CA602, path=scan_dir, detail="missing columns " + ", ".join(missing))
    if "evidence" not in columns:  # older scans: examples then come without a snippet
        con.execute("ALTER TABLE annotations ADD COLUMN evidence VARCHAR")
    return int(con.execute("SELECT count(*) FROM annotations").fetchone()[0])


def source_names(con: Any) -> list[str]:
    """The distinct sources of the annotations (a missing source counts as ``(none)``)."""
    return [r[0] for r in con.execute(f"SELECT DISTINCT coalesce(source, '{NO_SOURCE}') FROM annotations "
                                      "ORDER BY 1").fetchall()]


def labels_present(con: Any) -> list[str]:
    """The five labels of LABELS.md in their order, then any other label found in the annotations."""
    found = [r[0] for r in con.execute("SELECT DISTINCT label FROM annotations WHERE label IS NOT NULL "
                                       "ORDER BY label").fetchall()]
    return [*LABELS, *(lab for lab in found if lab not in LABELS)]


def _rows(con: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


_SIZES = """count(*) AS documents, sum(coalesce(n_words, 0))::BIGINT AS words,
            sum(coalesce(n_words, 0)::DOUBLE * coalesce(n_words, 0)) AS words_sq"""


def _per_group_label(con: Any, key: str, labels: Sequence[str], *, with_all: bool, where: str = "",
                     params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Counts per (group, label) with zero rows filled in: documents, words and Σwords² of the label and of
    the whole group. ``key`` is an SQL expression naming the group; ``with_all`` adds the group ``ALL``."""
    sets = "GROUPING SETS ((grp, label), (label))" if with_all else "grp, label"
    sql = f"""
    WITH base AS (SELECT {key} AS grp, label, n_words FROM annotations {where}),
    counts AS (
        SELECT CASE WHEN grouping(grp) = 1 THEN '{ALL}' ELSE grp END AS grp, label, {_SIZES}
        FROM base GROUP BY {sets}
    ),
    totals AS (SELECT grp, sum(documents)::BIGINT AS total, sum(words)::BIGINT AS total_words,
                      sum(words_sq) AS total_words_sq FROM counts GROUP BY grp),
    labels AS (SELECT unnest(?::VARCHAR[]) AS label)
    SELECT t.grp, l.label, coalesce(c.documents, 0)::BIGINT AS documents, t.total,
           coalesce(c.words, 0)::BIGINT AS words, t.total_words,
           coalesce(c.words_sq, 0) AS words_sq, t.total_words_sq
    FROM totals t CROSS JOIN labels l LEFT JOIN counts c ON c.grp = t.grp AND c.label = l.label
    ORDER BY t.grp = '{ALL}' DESC, t.grp, list_position(?::VARCHAR[], l.label)
    """
    return _rows(con, sql, [*params, list(labels), list(labels)])


def prevalence_counts(con: Any, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per source and label (and for the source ``ALL``): documents, words and Σwords², of label and source."""
    rows = _per_group_label(con, f"coalesce(source, '{NO_SOURCE}')", labels, with_all=True)
    return [{"source": r.pop("grp"), **r} for r in rows]


def domain_counts(con: Any, labels: Sequence[str], *, top: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per label counts for the ``top`` domains with the most documents, and a summary of domain coverage."""
    summary = _rows(con, "SELECT count(DISTINCT domain)::BIGINT AS distinct_domains, "
                         "count_if(domain IS NULL)::BIGINT AS documents_without_domain FROM annotations")[0]
    if top <= 0:
        return [], summary
    top_domains = [r[0] for r in con.execute(
        "SELECT domain FROM annotations WHERE domain IS NOT NULL GROUP BY domain "
        "ORDER BY count(*) DESC, domain LIMIT ?", [top]).fetchall()]
    if not top_domains:
        return [], summary
    rows = _per_group_label(con, "domain", labels, with_all=False,
                            where="WHERE domain IN (SELECT unnest(?::VARCHAR[]))", params=[top_domains])
    rank = {d: i + 1 for i, d in enumerate(top_domains)}
    out = []
    for r in rows:
        domain = r.pop("grp")
        out.append({"domain": domain, "rank": rank[domain], **r})
    out.sort(key=lambda r: (r["rank"], list(labels).index(r["label"])))
    return out, summary


def file_counts(con: Any, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per input file and label: documents, words and Σwords², of label and file."""
    rows = _per_group_label(con, "coalesce(file, '(unknown)')", labels, with_all=False)
    return [{"file": r.pop("grp"), **r} for r in rows]


def flagged_counts(con: Any, labels: Sequence[str], thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Documents with ``score_<label> >= t`` for every label and threshold, per source and for ``ALL``."""
    cols, keys = [], []
    for li, lab in enumerate(labels):
        if lab not in LABELS:
            continue  # no score column for a label outside LABELS.md
        for ti, t in enumerate(thresholds):
            cols.append(f"count_if(score_{lab} >= {float(t)!r})::BIGINT AS c_{li}_{ti}")
            keys.append((f"c_{li}_{ti}", lab, float(t)))
    sql = f"""SELECT CASE WHEN grouping(src) = 1 THEN '{ALL}' ELSE src END AS source, count(*)::BIGINT AS total,
              {", ".join(cols)}
              FROM (SELECT coalesce(source, '{NO_SOURCE}') AS src, * EXCLUDE (source) FROM annotations)
              GROUP BY GROUPING SETS ((src), ()) ORDER BY grouping(src) DESC, source"""
    out = []
    for r in _rows(con, sql):
        for key, lab, t in keys:
            out.append({"source": r["source"], "label": lab, "threshold": t, "documents": r[key], "total": r["total"]})
    return out


def score_histograms(con: Any, *, bins: int = HISTOGRAM_BINS) -> dict[str, dict[str, Any]]:
    """Per label: counts of gated documents' scores in ``bins`` equal bins over [0, 1]."""
    parts = [f"SELECT '{lab}' AS label, least(floor(score_{lab} * {bins}), {bins - 1})::INT AS bin, count(*) AS n "
             f"FROM annotations WHERE gated AND score_{lab} IS NOT NULL GROUP BY bin" for lab in LABELS]
    hist = {lab: [0] * bins for lab in LABELS}
    for lab, b, n in con.execute(" UNION ALL ".join(parts)).fetchall():
        hist[lab][max(0, b)] += int(n)
    gated, ungated = con.execute("SELECT count_if(gated)::BIGINT, count_if(NOT gated OR gated IS NULL)::BIGINT "
                                 "FROM annotations").fetchone()
    return {lab: {"bins": bins, "counts": hist[lab], "gated_documents": int(gated),
                  "ungated_documents": int(ungated)} for lab in LABELS}


def gate_counts(con: Any) -> list[dict[str, Any]]:
    """Per source and for ``ALL``: documents that passed the gate, and all documents."""
    return _rows(con, f"""SELECT CASE WHEN grouping(src) = 1 THEN '{ALL}' ELSE src END AS source,
                          count_if(gated)::BIGINT AS gated, count(*)::BIGINT AS total
                          FROM (SELECT coalesce(source, '{NO_SOURCE}') AS src, gated FROM annotations)
                          GROUP BY GROUPING SETS ((src), ()) ORDER BY grouping(src) DESC, source""")


def top_examples(con: Any, labels: Sequence[str], *, per_group: int) -> list[dict[str, Any]]:
    """The ``per_group`` highest-scoring documents of each AI label and source, with their evidence snippet."""
    ai = [lab for lab in labels if lab in LABELS and lab != "other"]
    if per_group <= 0 or not ai:
        return []
    score = "CASE label " + " ".join(f"WHEN '{lab}' THEN score_{lab}" for lab in ai) + " END"
    sql = f"""SELECT source, label, rank, score, id, file, "row", domain, evidence FROM (
                SELECT coalesce(source, '{NO_SOURCE}') AS source, label, {score} AS score, id, file, "row", domain,
                       evidence, row_number() OVER (PARTITION BY coalesce(source, '{NO_SOURCE}'), label
                                                    ORDER BY {score} DESC, id, file, "row") AS rank
                FROM annotations WHERE label IN (SELECT unnest(?::VARCHAR[])))
              WHERE rank <= ? ORDER BY source, list_position(?::VARCHAR[], label), rank"""
    out = _rows(con, sql, [ai, per_group, ai])
    for r in out:
        if r["score"] is not None and not math.isfinite(r["score"]):
            r["score"] = None
    return out


def store_table(con: Any, name: str, rows: list[dict[str, Any]], schema: Any) -> None:
    """Write ``rows`` (dicts with the fields of the pyarrow ``schema``) as the DuckDB table ``name``, typed even
    when empty, replacing any table of that name."""
    import pyarrow as pa

    con.register("_report_rows", pa.Table.from_pylist(rows, schema=schema))
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _report_rows')
    finally:
        con.unregister("_report_rows")
