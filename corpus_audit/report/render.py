"""Render a report dict as PNG plots (matplotlib, Agg), ``report.md`` and a self-contained ``index.html``.

Both documents are drawn from one list of :class:`Section` s, so they say the same thing. The HTML needs
no network: its CSS is inline and its plots are embedded as base64 ``data:`` URIs (the same PNGs are
also written beside it, and ``report.md`` links to those).
"""

from __future__ import annotations

import base64
import html as html_lib
import io
from dataclasses import dataclass, field
from typing import Any

from corpus_audit.labels import LABELS

AI_LABELS = tuple(lab for lab in LABELS if lab != "other")
MAX_PLOT_SOURCES = 25  # the largest sources, besides ALL; every source is in the tables
MAX_TABLE_ROWS = 200  # longer tables (by_file of a big scan) are complete in report.json and audit.duckdb
RAW = "raw share (classify-and-count)"
ADJUSTED = "adjusted share (corrected for misclassification)"


def plot_names() -> list[str]:
    """Every PNG file name the report may draw."""
    return ["prevalence.png", "adjusted.png", "thresholds.png", "gate.png", *(f"scores_{lab}.png" for lab in LABELS)]


# --- numbers -------------------------------------------------------------------------------------------------

def pct(x: float | None) -> str:
    """A share as a percentage with three significant digits: 0.0227 -> '2.27%'."""
    if x is None:
        return "n/a"
    return "0%" if x == 0 else f"{100 * x:.3g}%"


def share_ci(share: float | None, lo: float | None, hi: float | None) -> str:
    if share is None:
        return "n/a"
    return f"{pct(share)} [{pct(lo)}, {pct(hi)}]"


def count(n: Any) -> str:
    return "n/a" if n is None else f"{int(n):,}"


# --- plots ---------------------------------------------------------------------------------------------------

def plots(report: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes by file name: prevalence, adjusted (when rates exist), thresholds, gate, one score histogram
    per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}

    def save(fig: Any, name: str) -> None:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        plt.close(fig)
        out[name] = buf.getvalue()

    prev = report["prevalence"]
    sources = _plotted_sources(prev)
    fig, axes = plt.subplots(2, 2, figsize=(10, 2.2 + 0.45 * len(sources) * 2), squeeze=False)
    for ax, lab in zip(axes.flat, AI_LABELS):
        rows = [next(r for r in prev if r["source"] == s and r["label"] == lab) for s in sources]
        _interval_bars(ax, sources, rows, "share", "ci_low", "ci_high", color="#b2182b" if lab == "misaligned_ai"
                       else "#4d4d4d")
        ax.set_title(f"{lab}: {RAW}", fontsize=9)
    save(fig, "prevalence.png")

    adj = report["adjusted"]["rows"]
    adj_labels = [lab for lab in AI_LABELS if any(r["label"] == lab and r["adjusted_share"] is not None for r in adj)]
    if adj_labels:
        fig, axes = plt.subplots(len(adj_labels), 1, figsize=(10, 1.0 + len(adj_labels) * (0.9 + 0.5 * len(sources))),
                                 squeeze=False)
        for ax, lab in zip(axes.flat, adj_labels):
            rows = [r for r in adj if r["label"] == lab and r["source"] in sources]
            ys = range(len(rows))
            for off, (key, name, color) in enumerate([("raw", RAW, "#4d4d4d"), ("adjusted", ADJUSTED, "#2166ac")]):
                v = [r[f"{key}_share"] or 0.0 for r in rows]
                lo = [max(0.0, (r[f"{key}_share"] or 0) - (r[f"{key}_ci_low"] or 0)) for r in rows]
                hi = [max(0.0, (r[f"{key}_ci_high"] or 0) - (r[f"{key}_share"] or 0)) for r in rows]
                ax.barh([y + (off - 0.5) * 0.38 for y in ys], [100 * x for x in v], height=0.36, color=color,
                        xerr=[[100 * x for x in lo], [100 * x for x in hi]], capsize=3, label=name)
            ax.set_yticks(list(ys), [r["source"] for r in rows])
            ax.invert_yaxis()
            ax.set_xlabel("% of documents")
            ax.set_title(f"{lab}: raw vs adjusted (95% intervals)", fontsize=9)
            ax.legend(fontsize=7, loc="lower right")
        save(fig, "adjusted.png")

    th = [r for r in report["thresholds"]["rows"] if r["source"] == "ALL"]
    fig, axes = plt.subplots(1, len(LABELS), figsize=(14, 3), squeeze=False)
    for ax, lab in zip(axes.flat, LABELS):
        rows = sorted((r for r in th if r["label"] == lab), key=lambda r: r["threshold"])
        t = [r["threshold"] for r in rows]
        ax.plot(t, [100 * r["share"] for r in rows], marker="o", color="#2166ac")
        ax.fill_between(t, [100 * r["ci_low"] for r in rows], [100 * r["ci_high"] for r in rows], alpha=0.25,
                        color="#2166ac")
        decision = report["thresholds"]["decision"].get(lab)
        if decision is not None:
            ax.axvline(decision, color="#b2182b", linestyle="--", linewidth=1)
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel(f"score_{lab} threshold", fontsize=8)
        ax.set_xlim(0, 1)
    axes.flat[0].set_ylabel("% of documents flagged (ALL)")
    save(fig, "thresholds.png")

    gate = [r for r in report["gate"]["rows"] if r["source"] in sources]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(gate)))
    _interval_bars(ax, [r["source"] for r in gate], gate, "share", "ci_low", "ci_high", color="#1b7837")
    ax.set_title("documents passed on by the gate to rules and classifier", fontsize=9)
    save(fig, "gate.png")

    for lab, h in report["histograms"].items():
        fig, ax = plt.subplots(figsize=(7, 3))
        width = 1 / h["bins"]
        ax.bar([i * width for i in range(h["bins"])], h["counts"], width=width, align="edge", color="#4d4d4d")
        if any(h["counts"]):
            ax.set_yscale("log")
        t = h.get("threshold")
        if t is not None:
            ax.axvline(t, color="#b2182b", linestyle="--", label=f"decision threshold {t:g}")
        else:
            ax.axvline(0.5, color="#b2182b", linestyle=":", label="0.5: above it the label always wins "
                       "(decided by the highest score)")
        ax.legend(fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"score_{lab}")
        ax.set_ylabel("documents (log)")
        ax.set_title(f"score_{lab} of the {h['gated_documents']:,} gated documents "
                     f"({h['ungated_documents']:,} not gated, not shown)", fontsize=9)
        save(fig, f"scores_{lab}.png")
    return out


def _plotted_sources(prevalence: list[dict[str, Any]]) -> list[str]:
    """``ALL`` and the MAX_PLOT_SOURCES sources with the most documents, in table order."""
    totals = {r["source"]: r["total"] for r in prevalence}
    largest = set(sorted((s for s in totals if s != "ALL"), key=lambda s: -totals[s])[:MAX_PLOT_SOURCES])
    return [s for s in totals if s == "ALL" or s in largest]


def _interval_bars(ax: Any, names: list[str], rows: list[dict[str, Any]], key: str, lo: str, hi: str, *,
                   color: str) -> None:
    v = [100 * r[key] for r in rows]
    err = [[100 * (r[key] - r[lo]) for r in rows], [100 * (r[hi] - r[key]) for r in rows]]
    ax.barh(range(len(rows)), v, xerr=err, color=color, capsize=3)
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    ax.set_xlabel("% of documents (95% interval)")


# --- sections shared by markdown and HTML --------------------------------------------------------------------

@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Section:
    anchor: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def _table(headers: list[str], rows: list[list[str]], what: str, table_name: str) -> Table:
    """A table of at most MAX_TABLE_ROWS rows, saying where the rest is."""
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        note = f"{len(rows) - MAX_TABLE_ROWS:,} more {what} in report.json and audit.duckdb (table {table_name})"
        rows = rows[:MAX_TABLE_ROWS]
    return Table(headers, rows, note)


def _pivot(rows: list[dict[str, Any]], key: str, what: str, table_name: str) -> Table:
    """One line per group (domain, file): its size and each AI label's share, misaligned_ai with its interval."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r[key], {})[r["label"]] = r
    lines = []
    for g, by_label in groups.items():
        any_row = next(iter(by_label.values()))
        mis = by_label.get("misaligned_ai")
        lines.append([g, count(any_row["total"]), count(any_row["total_words"]),
                      share_ci(mis["share"], mis["ci_low"], mis["ci_high"]) if mis else "n/a",
                      *(pct(by_label[lab]["share"]) if lab in by_label else "n/a" for lab in AI_LABELS[1:])])
    headers = [key, "documents", "words", "misaligned_ai share [95% CI]", *(f"{lab} share" for lab in AI_LABELS[1:])]
    return _table(headers, lines, what, table_name)


def _summary(report: dict[str, Any]) -> Section:
    scan, adj = report["scan"], report["adjusted"]
    docs = scan.get("documents") or {}
    text = [
        f"Scan folder `{scan['path']}`: {count(scan['annotation_rows'])} annotated documents in "
        f"{count(scan['annotation_files'])} annotation files"
        + (f" (scan.json: {count(docs.get('read'))} read, {count(docs.get('rejected'))} rejected)" if docs else "")
        + ".",
        f"Model sha256 `{(scan.get('model') or 'unknown')[:16]}`, rule packs sha256 "
        f"`{(scan.get('rules') or 'unknown')[:16]}`.",
    ]
    head = next((r for r in report["prevalence"] if r["source"] == "ALL" and r["label"] == "misaligned_ai"), None)
    if head:
        line = (f"**misaligned_ai, whole corpus: {RAW} {share_ci(head['share'], head['ci_low'], head['ci_high'])}** "
                f"({count(head['documents'])} of {count(head['total'])} documents; {pct(head['words_share'])} of words)")
        a = next((r for r in adj["rows"] if r["source"] == "ALL" and r["label"] == "misaligned_ai"), None)
        if a and a["adjusted_share"] is not None:
            line += f"; **{ADJUSTED} {share_ci(a['adjusted_share'], a['adjusted_ci_low'], a['adjusted_ci_high'])}**"
        text.append(line + ".")
    text.append("Raw shares count the classifier's labels as they are; adjusted shares correct them with the "
                f"classifier's measured error rates. Rates: {adj['rates_source']}.")
    text += [f"Note: {n}" for n in report.get("notes", [])]
    return Section("summary", "Summary", text)


def _prevalence(report: dict[str, Any], images: list[str]) -> Section:
    rows = [[r["source"], r["label"], count(r["documents"]), count(r["total"]),
             share_ci(r["share"], r["ci_low"], r["ci_high"]),
             share_ci(r["words_share"], r["words_ci_low"], r["words_ci_high"])] for r in report["prevalence"]]
    return Section("prevalence", f"Prevalence by source: {RAW}",
                   ["One row per source and label; `ALL` is the whole corpus. Shares of documents with a 95% Wilson "
                    "interval, and shares of words (the words of the documents with the label) with a 95% interval "
                    "at the ratio's effective sample size."],
                   images, [_table(["source", "label", "documents", "of", "document share [95% CI]",
                                    "word share [95% CI]"], rows, "rows", "prevalence")])


def _adjusted(report: dict[str, Any], images: list[str]) -> Section:
    adj = report["adjusted"]
    title = f"Adjusted prevalence: {ADJUSTED}"
    if not adj["rows"]:
        return Section("adjusted", title, [f"Not computed: {adj['rates_source']}. Only raw shares are reported."])
    rate_rows = [[lab, f"{r['tpr']:.3f}", f"{r['fpr']:.4f}",
                  count(r["positives"]) if r.get("positives") is not None else "n/a",
                  count(r["negatives"]) if r.get("negatives") is not None else "n/a"]
                 if r else [lab, "n/a", "n/a", "n/a", "n/a"] for lab, r in adj["rates"].items()]
    rows = [[r["source"], r["label"], share_ci(r["raw_share"], r["raw_ci_low"], r["raw_ci_high"]),
             share_ci(r["adjusted_share"], r["adjusted_ci_low"], r["adjusted_ci_high"]), r["interval"], r["note"]]
            for r in adj["rows"]]
    used = list(dict.fromkeys(r["interval"] for r in adj["rows"]))
    described = [f"{k}: {v}" for k, v in report["method"]["adjusted_interval"].items() if k in used]
    text = [f"Rates from {adj['rates_source']}.",
            f"The {ADJUSTED} is {report['method']['adjusted']}. Its interval: " + ("; ".join(described) or "none") + ".",
            "Both numbers are shown side by side: the raw share is what the classifier says; the adjusted share is "
            "the estimate of the true share, which is only as good as the rates."]
    return Section("adjusted", title, text, images, [
        Table(["label", "tpr (recall)", "fpr", "positives measured", "negatives measured"], rate_rows),
        _table(["source", "label", RAW + " [95% CI]", ADJUSTED + " [95% CI]", "interval", "note"], rows, "rows",
               "adjusted")])


def _thresholds(report: dict[str, Any], images: list[str]) -> Section:
    values = report["thresholds"]["values"]
    by_key: dict[tuple[str, str], dict[float, dict[str, Any]]] = {}
    for r in report["thresholds"]["rows"]:
        by_key.setdefault((r["source"], r["label"]), {})[r["threshold"]] = r
    rows = [[s, lab, *(pct(cells[t]["share"]) if t in cells else "n/a" for t in values)]
            for (s, lab), cells in by_key.items()]
    decision = report["thresholds"]["decision"].get("misaligned_ai")
    floor = report["thresholds"].get("misaligned_ai_unnamed")
    unnamed = f" (and >= {floor} for a document that names no artificial agent)" \
        if floor is not None and decision is not None and floor > decision else ""
    return Section("thresholds", "Threshold sensitivity",
                   ["Share of documents whose score for a label is at or above each threshold (any label, not only "
                    "the predicted one); intervals are in report.json and audit.duckdb (table threshold_sensitivity). "
                    f"The scan labels a document misaligned_ai at score_misaligned_ai >= {decision}{unnamed}; the "
                    "other labels go to the highest score. Histograms show the scores of the documents the gate "
                    "passed on (log scale), with the threshold marked."],
                   images, [_table(["source", "label", *(f">= {t:g}" for t in values)], rows, "rows",
                                   "threshold_sensitivity")])


def _gate(report: dict[str, Any], images: list[str]) -> Section:
    gate = report["gate"]
    text = ["The cheap gate passes a document on to rules and classifier; documents it does not pass are labelled "
            "`other` without being classified."]
    if gate.get("recall"):
        text.append(f"Gate recall by gold label ({gate['recall_source']}): "
                    + ", ".join(f"{k} {v:.3f}" for k, v in gate["recall"].items()) + ".")
    rows = [[r["source"], count(r["gated"]), count(r["total"]), share_ci(r["share"], r["ci_low"], r["ci_high"])]
            for r in gate["rows"]]
    return Section("gate", "Gate", text, images,
                   [_table(["source", "passed the gate", "documents", "pass rate [95% CI]"], rows, "sources", "gate")])


def _domains(report: dict[str, Any]) -> Section:
    dom = report["domains"]
    text = [f"The {dom['top']} domains with the most documents ({count(dom['distinct_domains'])} distinct domains; "
            f"{count(dom['documents_without_domain'])} documents have no URL, hence no domain)."]
    tables = [_pivot(report["by_domain"], "domain", "domains", "by_domain")] if report["by_domain"] else []
    return Section("domains", f"By domain (top {dom['top']})", text, [], tables)


def _files(report: dict[str, Any]) -> Section:
    return Section("files", "By input file", ["Each input file the scan read."], [],
                   [_pivot(report["by_file"], "file", "files", "by_file")])


def _examples(report: dict[str, Any]) -> Section:
    rows = [[r["source"], r["label"], str(r["rank"]), "n/a" if r["score"] is None else f"{r['score']:.3f}",
             r["id"] or "", r["domain"] or "", r["evidence"] or "(no snippet)"] for r in report["examples"]]
    tables = [_table(["source", "label", "rank", "score", "id", "domain", "evidence"], rows, "examples",
                     "examples")] if rows else []
    return Section("examples", "Examples: top-scoring evidence per label and source",
                   ["The highest-scoring documents of each AI label in each source, with the snippet of the chunk "
                    "that decided the label. Check them to see what the numbers above count."], [], tables)


def _method(report: dict[str, Any]) -> Section:
    return Section("method", "Method and files", [
        *(f"{k}: {v}" for k, v in report["method"].items() if isinstance(v, str)),
        "Files beside this one: report.json (every table in full), report.md, the PNG plots, and audit.duckdb "
        "with the table `annotations` (every annotation row) and the report tables (prevalence, by_domain, "
        "by_file, adjusted, threshold_sensitivity, gate, examples, score_histograms). For example: "
        "`duckdb audit.duckdb \"SELECT source, count(*) FROM annotations WHERE label = 'misaligned_ai' GROUP BY 1\"`.",
        f"Written by corpus-audit {report['corpus_audit_version']}."])


def sections(report: dict[str, Any], images: list[str]) -> list[Section]:
    """The report's content, in order, as sections of paragraphs, plots and tables."""
    have = set(images)

    def img(*names: str) -> list[str]:
        return [n for n in names if n in have]

    return [
        _summary(report),
        _prevalence(report, img("prevalence.png")),
        _adjusted(report, img("adjusted.png")),
        _thresholds(report, img("thresholds.png", *(f"scores_{lab}.png" for lab in LABELS))),
        _gate(report, img("gate.png")),
        _domains(report),
        _files(report),
        _examples(report),
        _method(report),
    ]


# --- markdown ------------------------------------------------------------------------------------------------

def _md_cell(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any], images: list[str]) -> str:
    """``report.md``: the sections as GitHub-flavoured markdown, linking to the PNG files beside it."""
    lines = [f"# corpus-audit report: {report['scan']['path']}", ""]
    for sec in sections(report, images):
        lines += [f"## {sec.title}", ""]
        for p in sec.paragraphs:
            lines += [p, ""]
        for name in sec.images:
            lines += [f"![{name[:-4]}]({name})", ""]
        for t in sec.tables:
            lines.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
            lines.append("|" + "---|" * len(t.headers))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            lines.append("")
            if t.note:
                lines += [f"_{t.note}_", ""]
    return "\n".join(lines).rstrip() + "\n"


# --- HTML ----------------------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav a{margin-right:1em}table{border-collapse:collapse;margin:1em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f4f4f4}
td.num{text-align:right;white-space:nowrap}img{max-width:100%;display:block;margin:1em 0}
td.snippet{max-width:40em;font-size:.95em}code{background:#f4f4f4;padding:0 .2em}.note{color:#666;font-style:italic}
"""


def _inline(text: str) -> str:
    """Escape ``text`` for HTML; `code` and **bold** spans of the shared paragraphs become tags."""
    import re

    out = html_lib.escape(text, quote=True)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell == "n/a") and " " not in cell.split(" [")[0]


def html(report: dict[str, Any], images: dict[str, bytes]) -> str:
    """``index.html``: the sections with inline CSS and the plots embedded as base64 PNG; no network needed."""
    secs = sections(report, list(images))
    title = f"corpus-audit report: {report['scan']['path']}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html_lib.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html_lib.escape(title)}</h1>",
             "<nav>" + "".join(f'<a href="#{s.anchor}">{html_lib.escape(s.title.split(":")[0])}</a>' for s in secs)
             + "</nav>"]
    for sec in secs:
        parts.append(f'<section id="{sec.anchor}"><h2>{html_lib.escape(sec.title)}</h2>')
        parts += [f"<p>{_inline(p)}</p>" for p in sec.paragraphs]
        for name in sec.images:
            data = base64.b64encode(images[name]).decode("ascii")
            parts.append(f'<img alt="{html_lib.escape(name[:-4])}" src="data:image/png;base64,{data}">')
        for t in sec.tables:
            parts.append('<table><thead><tr>' + "".join(f"<th>{html_lib.escape(h)}</th>" for h in t.headers)
                         + "</tr></thead><tbody>")
            for row in t.rows:
                cells = []
                for i, c in enumerate(row):
                    cls = ' class="snippet"' if t.headers[i] == "evidence" else (
                        ' class="num"' if _numeric(c) else "")
                    cells.append(f"<td{cls}>{html_lib.escape(c)}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</tbody></table>")
            if t.note:
                parts.append(f'<p class="note">{html_lib.escape(t.note)}</p>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
