"""`corpus-audit report`: prevalence with intervals, adjusted prevalence, thresholds, gate, examples, and the files.

Unit tests build annotation Parquet files directly with ANNOTATION_SCHEMA; one end-to-end test scans two
source folders with a real small model and reports on them, and one renders index.html in headless Chromium.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus_audit.annotate import ANNOTATION_SCHEMA
from corpus_audit.cli import main
from corpus_audit.labels import LABELS
from corpus_audit.report import build_report
from corpus_audit.report.rates import from_metrics
from corpus_audit.report.stats import LabelRates, adjusted_share, rogan_gladen, weighted_share_interval, wilson_interval
from tests.corpus_fixtures import DOCS, write_jsonl

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = "/usr/bin/chromium"


# --- building annotation rows --------------------------------------------------------------------------------

def row(i: int, source: str, label: str, *, score: float = 0.9, n_words: int = 100, domain: str | None = None,
        file: str | None = None, evidence: str | None = None, gated: bool | None = None) -> dict:
    """One annotation row whose scores put ``score`` on ``label`` and spread the rest evenly."""
    gated = label != "other" if gated is None else gated
    if gated:
        scores = dict.fromkeys(LABELS, (1 - score) / (len(LABELS) - 1)) | {label: score}
    else:
        scores = {lab: float(lab == "other") for lab in LABELS}
    return {"id": f"{source}-{i}", "source": source, "file": file or f"/data/{source}/part-0.jsonl", "row": i,
            "domain": domain, "n_bytes": n_words * 6, "n_words": n_words, "gated": gated, "label": label,
            **{f"score_{lab}": s for lab, s in scores.items()}, "rule_hits": [],
            "evidence_start": 0 if gated else None, "evidence_end": 50 if gated else None,
            "evidence": (evidence or f"snippet of {source}-{i}") if gated else None}


def write_annotations(folder: str, files: dict[str, list[dict]]) -> None:
    os.makedirs(os.path.join(folder, "annotations"), exist_ok=True)
    for name, rows in files.items():
        pq.write_table(pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA), os.path.join(folder, "annotations", name))


def fake_model(folder: str, *, confusion: dict | None = None, sha: str = "a" * 64) -> str:
    """A model folder with only metrics.json (the report never loads the model itself without --eval)."""
    os.makedirs(folder, exist_ok=True)
    if confusion is None:  # 100 gold documents per label; misaligned_ai: tpr 0.8, fpr 8/400 = 0.02
        confusion = {g: {p: 0 for p in LABELS} for g in LABELS}
        for g in LABELS:
            confusion[g][g] = 100
        confusion["misaligned_ai"].update(misaligned_ai=80, ai_risk_discourse=20)
        confusion["ai_risk_discourse"].update(ai_risk_discourse=92, misaligned_ai=8)
    with open(os.path.join(folder, "metrics.json"), "w") as fh:
        json.dump({"sha256": sha, "valid_documents": 500, "confusion": confusion}, fh)
    return os.path.join(folder, "model.ftz")


def corpus(tmp: str, *, model_sha: str = "a" * 64) -> str:
    """Two sources over three annotation files: `books` (120 docs), `web` (1,000 docs, no aligned_ai at all)."""
    scan = os.path.join(tmp, "scan")
    books = [row(i, "books", lab, domain=None, n_words=200 if lab == "misaligned_ai" else 100)
             for i, lab in enumerate(["misaligned_ai"] * 30 + ["aligned_ai"] * 10 + ["ai_other"] * 20 + ["other"] * 60)]
    web = []
    for i in range(1000):
        lab = "misaligned_ai" if i % 100 == 0 else "ai_risk_discourse" if i % 50 == 1 else "other"
        web.append(row(i, "web", lab, domain=f"site{i % 7}.example" if i % 3 else None, score=0.5 + (i % 97) / 200,
                       file=f"/data/web/part-{i // 500}.jsonl"))
    write_annotations(scan, {"00000.parquet": books, "00001.parquet": web[:500], "00002.parquet": web[500:]})
    model = fake_model(os.path.join(tmp, "model"))
    with open(os.path.join(scan, "scan.json"), "w") as fh:
        json.dump({"documents": {"read": 1120, "annotated": 1120, "rejected": 0}, "files": {"read": 3, "quarantined": 0},
                   "model": model_sha, "rules": "b" * 64, "config": {"model": model, "thresholds": {}}}, fh)
    return scan


def annotation_table(scan: str) -> list[dict]:
    return pa.concat_tables(pq.read_table(p) for p in sorted(glob.glob(f"{scan}/annotations/**/*.parquet",
                                                                          recursive=True))).to_pylist()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A full report (with plots) over the synthetic two-source corpus."""
    scan = corpus(str(tmp_path_factory.mktemp("built")))
    return scan, build_report(scan, top_domains=5, thresholds=(0.5, 0.9))


def all_intervals(rep: dict):
    """(where, estimate, low, high) for every interval in the report."""
    for key in ("prevalence", "by_domain", "by_file"):
        for r in rep[key]:
            yield key, r["share"], r["ci_low"], r["ci_high"]
            yield key + " words", r["words_share"], r["words_ci_low"], r["words_ci_high"]
    for r in rep["thresholds"]["rows"] + rep["gate"]["rows"]:
        yield "thresholds/gate", r["share"], r["ci_low"], r["ci_high"]
    for r in rep["adjusted"]["rows"]:
        yield "adjusted raw", r["raw_share"], r["raw_ci_low"], r["raw_ci_high"]
        if r["adjusted_share"] is not None:
            yield "adjusted", r["adjusted_share"], r["adjusted_ci_low"], r["adjusted_ci_high"]


# --- statistics ----------------------------------------------------------------------------------------------

def test_wilson_interval_matches_reference_values_and_keeps_an_upper_bound_at_zero_successes():
    lo, hi = wilson_interval([0, 5, 10, 0], [10, 10, 10, 10_000_000])
    assert lo[0] == 0 and hi[0] == pytest.approx(0.2775, abs=1e-4)
    assert (lo[1], hi[1]) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert lo[2] == pytest.approx(0.7225, abs=1e-4) and hi[2] == 1
    assert hi[3] > 0  # even among ten million documents, none seen is not "exactly zero"
    assert tuple(map(float, wilson_interval(0, 0))) == (0.0, 1.0)


def test_word_share_interval_is_the_wilson_interval_when_all_documents_are_equally_long():
    share, lo, hi = weighted_share_interval([0, 30], [1000, 1000], [0, 30], [1000, 1000], [1000, 1000])
    w_lo, w_hi = wilson_interval([0, 30], [1000, 1000])
    assert share[0] == 0 and lo[0] == 0 and hi[0] == pytest.approx(w_hi[0])
    assert share[1] == 0.03 and (lo[1], hi[1]) == pytest.approx((w_lo[1], w_hi[1]), abs=2e-4)


def test_word_share_interval_widens_when_a_few_long_documents_carry_the_words():
    # 1 document of 1000 words among 99 of 10 words: half the words, but one document's worth of evidence
    share, lo, hi = weighted_share_interval(1000, 1990, 1000**2, 1000**2 + 99 * 100, 100)
    assert 0.5 == pytest.approx(share, abs=0.01) and hi - lo > 0.5


def test_rogan_gladen_corrects_for_false_positives_and_clips_to_the_unit_interval():
    assert float(rogan_gladen(0.1, 0.8, 0.05)) == pytest.approx(0.0667, abs=1e-4)
    assert float(rogan_gladen(0.01, 0.8, 0.05)) == 0.0  # fewer flags than false positives alone would give
    assert float(rogan_gladen(0.95, 0.8, 0.05)) == 1.0
    assert np.isnan(rogan_gladen(0.1, 0.3, 0.3))  # a classifier that does not separate the label


def test_adjusted_interval_contains_its_estimate_and_narrows_with_a_larger_evaluation_set():
    small = adjusted_share(500, 10_000, LabelRates(0.8, 0.02, positives=30, negatives=300))
    large = adjusted_share(500, 10_000, LabelRates(0.8, 0.02, positives=3000, negatives=30000))
    bare = adjusted_share(500, 10_000, LabelRates(0.8, 0.02))
    for est, lo, hi, _ in (small, large, bare):
        assert lo[0] <= est[0] <= hi[0] and est[0] == pytest.approx((0.05 - 0.02) / 0.78)
    assert small[3] == "bootstrap" and bare[3] == "wilson-propagated"
    assert small[2][0] - small[1][0] > large[2][0] - large[1][0] > bare[2][0] - bare[1][0]
    assert adjusted_share(0, 100, LabelRates(0.8, 0.02, 30, 300))[0][0] == 0  # seeded: same numbers every run
    again = adjusted_share(500, 10_000, LabelRates(0.8, 0.02, positives=30, negatives=300))
    assert (again[1][0], again[2][0]) == (small[1][0], small[2][0])


def test_rates_come_from_a_confusion_matrix_or_from_per_label_precision_and_recall():
    conf = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
    conf["misaligned_ai"].update(misaligned_ai=8, other=2)
    conf["other"].update(other=85, misaligned_ai=5)
    r = from_metrics({"confusion": conf}, origin="t")["misaligned_ai"]
    assert (r.tpr, r.fpr, r.positives, r.negatives) == (0.8, 5 / 90, 10, 90)
    val = {"valid_documents": 100, "validation": {"misaligned_ai": {"precision": 8 / 13, "recall": 0.8,
                                                                    "support": 10, "predicted": 13}}}
    r2 = from_metrics(val, origin="t")["misaligned_ai"]
    assert (r2.tpr, r2.fpr, r2.positives, r2.negatives) == (r.tpr, r.fpr, r.positives, r.negatives)


# --- the report over synthetic annotations -------------------------------------------------------------------

def test_prevalence_counts_equal_the_annotations_for_every_source_label_and_all(built):
    scan, rep = built
    rows = annotation_table(scan)
    for source in ("books", "web", "ALL"):
        sub = [r for r in rows if source in ("ALL", r["source"])]
        for lab in LABELS:
            x = next(p for p in rep["prevalence"] if p["source"] == source and p["label"] == lab)
            n = sum(r["label"] == lab for r in sub)
            assert (x["documents"], x["total"]) == (n, len(sub))
            assert x["share"] == n / len(sub)
            assert x["words"] == sum(r["n_words"] for r in sub if r["label"] == lab)
    assert len(rep["prevalence"]) == 3 * len(LABELS) and rep["prevalence"][0]["source"] == "ALL"


def test_every_interval_contains_its_estimate_and_zero_counts_keep_a_positive_upper_bound(built):
    _, rep = built
    checked = 0
    for where, est, lo, hi in all_intervals(rep):
        assert 0 <= lo <= est <= hi <= 1, where
        if est == 0 and where != "adjusted":
            assert hi > 0, where
        checked += 1
    zero = next(p for p in rep["prevalence"] if p["source"] == "web" and p["label"] == "aligned_ai")
    assert zero["documents"] == 0 and zero["ci_high"] > 0 and zero["words_ci_high"] > 0
    assert checked > 100


def test_word_share_weighs_documents_by_their_words(built):
    _, rep = built
    books = next(p for p in rep["prevalence"] if p["source"] == "books" and p["label"] == "misaligned_ai")
    assert books["share"] == 30 / 120 and books["words_share"] == 30 * 200 / (30 * 200 + 90 * 100)


def test_adjusted_prevalence_uses_the_model_card_and_sits_beside_the_raw_share(built):
    _, rep = built
    adj = rep["adjusted"]
    assert adj["rates_kind"] == "model-card" and "metrics.json" in adj["rates_source"]
    assert adj["rates"]["misaligned_ai"] == {"tpr": 0.8, "fpr": 0.02, "positives": 100, "negatives": 400}
    r = next(a for a in adj["rows"] if a["source"] == "books" and a["label"] == "misaligned_ai")
    assert r["raw_share"] == 0.25 and r["adjusted_share"] == pytest.approx((0.25 - 0.02) / 0.78)
    assert r["interval"] == "bootstrap"
    md = open(os.path.join(os.path.dirname(os.path.dirname(rep["scan"]["model_path"])), "scan", "report",
                           "report.md")).read()
    assert "raw share (classify-and-count)" in md and "adjusted share (corrected for misclassification)" in md


def test_a_model_card_describing_another_model_file_is_not_used(tmp_path):
    scan = corpus(str(tmp_path), model_sha="c" * 64)
    rep = build_report(scan, plots=False)
    assert rep["adjusted"]["rows"] == [] and "another model file" in rep["adjusted"]["rates_source"]


def test_threshold_sensitivity_counts_documents_scoring_at_or_above_each_threshold(built):
    scan, rep = built
    rows = annotation_table(scan)
    assert rep["thresholds"]["values"] == [0.5, 0.9]
    for t in (0.5, 0.9):
        x = next(r for r in rep["thresholds"]["rows"] if r["source"] == "web" and r["label"] == "misaligned_ai"
                 and r["threshold"] == t)
        assert x["documents"] == sum(r["source"] == "web" and r["score_misaligned_ai"] >= t for r in rows)
    assert rep["histograms"]["misaligned_ai"]["threshold"] == 0.5
    assert sum(rep["histograms"]["misaligned_ai"]["counts"]) == sum(r["gated"] for r in rows)


def test_gate_pass_rate_is_reported_per_source(built):
    scan, rep = built
    rows = annotation_table(scan)
    web = next(g for g in rep["gate"]["rows"] if g["source"] == "web")
    assert (web["gated"], web["total"]) == (sum(r["gated"] for r in rows if r["source"] == "web"), 1000)


def test_top_domains_keeps_the_domains_with_most_documents_and_counts_the_rest(built):
    _, rep = built
    domains = list(dict.fromkeys(r["domain"] for r in rep["by_domain"]))
    assert len(domains) == 5 and rep["domains"]["distinct_domains"] == 7
    assert rep["domains"]["documents_without_domain"] == 120 + 334
    totals = [next(r["total"] for r in rep["by_domain"] if r["domain"] == d) for d in domains]
    assert totals == sorted(totals, reverse=True)


def test_by_file_has_one_row_per_input_file_and_label(built):
    _, rep = built
    files = {r["file"] for r in rep["by_file"]}
    assert files == {"/data/books/part-0.jsonl", "/data/web/part-0.jsonl", "/data/web/part-1.jsonl"}
    assert len(rep["by_file"]) == 3 * len(LABELS)


def test_examples_are_the_top_scoring_evidence_per_ai_label_and_source(built):
    scan, rep = built
    web_mis = [e for e in rep["examples"] if e["source"] == "web" and e["label"] == "misaligned_ai"]
    assert len(web_mis) == 3 and [e["rank"] for e in web_mis] == [1, 2, 3]
    best = max(r["score_misaligned_ai"] for r in annotation_table(scan)
               if r["source"] == "web" and r["label"] == "misaligned_ai")
    assert web_mis[0]["score"] == best and web_mis[0]["evidence"].startswith("snippet of web-")
    assert not [e for e in rep["examples"] if e["label"] == "other"]


def test_audit_duckdb_holds_every_annotation_row_and_the_report_tables(built):
    scan, rep = built
    con = duckdb.connect(os.path.join(scan, "report", "audit.duckdb"), read_only=True)
    tables = {t[0] for t in con.execute("SHOW TABLES").fetchall()}
    assert {"annotations", "prevalence", "by_domain", "by_file", "adjusted", "threshold_sensitivity", "gate",
            "examples", "score_histograms"} <= tables
    assert con.execute("SELECT count(*) FROM annotations").fetchone()[0] == 1120
    n, total = con.execute("SELECT documents, total FROM prevalence WHERE source = 'web' "
                           "AND label = 'misaligned_ai'").fetchone()
    assert (n, total) == con.execute("SELECT count_if(label = 'misaligned_ai'), count(*) FROM annotations "
                                     "WHERE source = 'web'").fetchone()
    assert con.execute("SELECT count(*) FROM adjusted WHERE adjusted_share IS NOT NULL").fetchone()[0] > 0
    assert set(ANNOTATION_SCHEMA.names) <= {r[0] for r in con.execute("DESCRIBE annotations").fetchall()}


def test_report_files_are_complete_with_no_temporary_files_left(built):
    scan, _ = built
    out = os.path.join(scan, "report")
    names = set(os.listdir(out))
    assert {"index.html", "report.md", "report.json", "audit.duckdb", "prevalence.png", "adjusted.png",
            "thresholds.png", "gate.png", *(f"scores_{lab}.png" for lab in LABELS)} <= names
    assert not [n for n in names if n.startswith(".") or ".tmp" in n or n.endswith(".wal")]


def test_index_html_is_self_contained_and_escapes_evidence(tmp_path):
    scan = os.path.join(str(tmp_path), "scan")
    write_annotations(scan, {"00000.parquet": [
        row(0, "web", "misaligned_ai", evidence='<script>alert("x")</script> the AI <b>copied</b> itself'),
        row(1, "web", "other")]})
    build_report(scan)
    page = open(os.path.join(scan, "report", "index.html"), encoding="utf-8").read()
    assert "<script" not in page and "&lt;script&gt;" in page
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)  # no network fetches
    images = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(glob.glob(os.path.join(scan, "report", "*.png")))
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "no scan.json" in page  # says what it does not know


def test_report_reads_a_remote_annotation_folder_through_fsspec(tmp_path):
    import fsspec

    local = corpus(str(tmp_path))
    fs = fsspec.filesystem("memory")
    for p in glob.glob(f"{local}/annotations/*.parquet") + [f"{local}/scan.json"]:
        fs.put(p, "/remote-scan/" + os.path.relpath(p, local))
    try:
        rep = build_report("memory://remote-scan", plots=False)
        assert fs.exists("/remote-scan/report/report.json") and fs.exists("/remote-scan/report/audit.duckdb")
        assert json.loads(fs.cat("/remote-scan/report/report.json"))["prevalence"] == rep["prevalence"]
        assert rep["scan"]["annotation_rows"] == 1120
    finally:
        fs.rm("/remote-scan", recursive=True)


def test_report_json_is_identical_when_the_report_is_built_again(tmp_path):
    scan = corpus(str(tmp_path))
    build_report(scan, plots=False)
    first = open(os.path.join(scan, "report", "report.json"), "rb").read()
    build_report(scan, plots=False)
    assert open(os.path.join(scan, "report", "report.json"), "rb").read() == first


def test_a_folder_without_annotations_is_error_ca601(tmp_path):
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "CA601" in r.output and "corpus-audit scan" in r.output


def test_an_unreadable_annotation_file_is_error_ca602(tmp_path):
    os.makedirs(tmp_path / "annotations")
    (tmp_path / "annotations" / "00000.parquet").write_bytes(b"not parquet at all")
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "CA602" in r.output


def test_thresholds_outside_zero_to_one_are_a_usage_error(tmp_path):
    scan = corpus(str(tmp_path))
    for bad in ("0.5,1.5", "high"):
        r = CliRunner().invoke(main, ["report", scan, "--thresholds", bad])
        assert r.exit_code == 2 and "CA205" in r.output, bad


def test_eval_without_the_scans_model_is_error_ca603(tmp_path):
    scan = corpus(str(tmp_path))  # its scan.json names a model folder holding only metrics.json
    labelled = tmp_path / "eval.jsonl"
    write_jsonl(str(labelled), [{"id": "a", "text": "Whisk two eggs.", "label": "other"}])
    r = CliRunner().invoke(main, ["report", scan, "--eval", str(labelled)])
    assert r.exit_code == 2 and "CA603" in r.output


def test_report_eval_applies_the_thresholds_the_scan_applied():
    from corpus_audit.labels import UNNAMED_KEY
    from corpus_audit.report.rates import scan_thresholds

    # a scan from before the unnamed floor applied none; a newer one recorded its own
    assert scan_thresholds({"thresholds": {"misaligned_ai": 0.26}}) == {"misaligned_ai": 0.26, UNNAMED_KEY: 0.0}
    assert scan_thresholds({"thresholds": {"misaligned_ai": 0.2, UNNAMED_KEY: 0.5}})[UNNAMED_KEY] == 0.5
    assert scan_thresholds({}) == {}


def test_the_command_line_loads_neither_duckdb_nor_matplotlib_until_a_report_is_built():
    code = "import sys, corpus_audit.cli; print(sorted(m for m in ('duckdb', 'matplotlib', 'numpy') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(HERE))
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


# --- end to end: scan two sources with a real model, then report -------------------------------------------

@pytest.fixture(scope="module")
def scanned_and_reported(tmp_path_factory, small_model, training_examples):
    """`corpus-audit scan` over two source folders, then `corpus-audit report --eval` on the result."""
    tmp = str(tmp_path_factory.mktemp("e2e"))
    fiction = [{"id": ex.id, "text": ex.text} for ex in training_examples if ex.label != "other"][:60]
    web = DOCS + [{"id": ex.id, "text": ex.text} for ex in training_examples if ex.label == "other"][:40]
    write_jsonl(os.path.join(tmp, "in", "fiction", "part-0.jsonl"), fiction)
    write_jsonl(os.path.join(tmp, "in", "web", "part-0.jsonl"), web)
    labelled = [{"id": ex.id, "text": ex.text, "label": ex.label} for ex in training_examples[::12]]
    write_jsonl(os.path.join(tmp, "eval.jsonl"), labelled)
    scan = os.path.join(tmp, "scan")
    r = CliRunner().invoke(main, ["scan", os.path.join(tmp, "in", "fiction"), os.path.join(tmp, "in", "web"),
                                  "-o", scan, "--model", small_model, "--workers", "1"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report", scan, "--eval", os.path.join(tmp, "eval.jsonl"), "--top-domains", "3"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return scan, r.output


def test_scan_then_report_counts_match_the_annotations_and_duckdb_answers_sql(scanned_and_reported):
    scan, output = scanned_and_reported
    rep = json.load(open(os.path.join(scan, "report", "report.json")))
    rows = annotation_table(scan)
    assert {r["source"] for r in rows} == {"fiction", "web"}
    for source in ("fiction", "web", "ALL"):
        sub = [r for r in rows if source in ("ALL", r["source"])]
        for lab in LABELS:
            x = next(p for p in rep["prevalence"] if p["source"] == source and p["label"] == lab)
            assert (x["documents"], x["total"]) == (sum(r["label"] == lab for r in sub), len(sub))
            assert 0 <= x["ci_low"] <= x["share"] <= x["ci_high"] <= 1 and x["ci_high"] > 0
    assert rep["scan"]["documents"]["annotated"] == len(rows)
    assert rep["adjusted"]["rates_kind"] == "eval" and rep["adjusted"]["rows"]
    assert rep["gate"]["recall"] is not None
    assert "misaligned_ai in ALL: raw" in output and "rates: --eval" in output
    assert rep["thresholds"]["misaligned_ai_unnamed"] == 0.5  # the floor the scan recorded

    con = duckdb.connect(os.path.join(scan, "report", "audit.duckdb"), read_only=True)
    per_source = dict(con.execute("SELECT source, count(*) FROM annotations GROUP BY source").fetchall())
    assert per_source == {"fiction": 60, "web": len(DOCS) + 40}
    joined = con.execute("""SELECT count(*) FROM prevalence p JOIN (SELECT source, label, count(*) AS n
                            FROM annotations GROUP BY ALL) a USING (source, label) WHERE p.documents <> a.n""")
    assert joined.fetchone()[0] == 0


def test_the_threshold_section_states_the_unnamed_floor_when_it_is_above_the_threshold():
    from corpus_audit.report.render import _thresholds

    def text(decision, floor):
        report = {"thresholds": {"values": [], "rows": [], "decision": {"misaligned_ai": decision},
                                 "misaligned_ai_unnamed": floor}}
        return _thresholds(report, []).paragraphs[0]

    assert ">= 0.2 (and >= 0.5 for a document that names no artificial agent)" in text(0.2, 0.5)
    assert "names no artificial agent" not in text(0.5, 0.5) + text(0.2, None) + text(0.2, 0.0)


def _chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    setup = subprocess.run(["bash", os.path.join(HERE, "setup_chromium.sh")], capture_output=True, text=True)
    if setup.returncode != 0 or not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent and tests/setup_chromium.sh could not install it: "
                    f"{setup.stderr.strip() or setup.stdout.strip() or 'no reason given'}")
    return CHROMIUM


def test_index_html_renders_in_headless_chromium_with_its_tables_and_plots(scanned_and_reported):
    chromium = _chromium()
    scan, _ = scanned_and_reported
    page = os.path.join(scan, "report", "index.html")
    profile = tempfile.mkdtemp(prefix="ca-chromium-")
    try:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run",
                            f"--user-data-dir={profile}", "--dump-dom", f"file://{page}"],
                           capture_output=True, text=True, timeout=90)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    dom = r.stdout
    assert r.returncode == 0 and "</html>" in dom, r.stderr[-2000:]
    for section in ("summary", "prevalence", "adjusted", "thresholds", "gate", "domains", "files", "examples"):
        assert f'id="{section}"' in dom
    assert dom.count("<table") >= 7
    pngs = glob.glob(os.path.join(scan, "report", "*.png"))
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', dom)) == len(pngs) >= 9
    assert "misaligned_ai" in dom and "adjusted share (corrected for misclassification)" in dom
