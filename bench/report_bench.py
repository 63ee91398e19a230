"""Benchmark: `corpus-audit report` over 10 million synthetic annotation rows (target: under a minute on 2 cores).

Usage: python bench/report_bench.py [--rows 10000000] [--dir DIR] [--keep] [--out bench/results]

Generates a scan folder of contract annotation rows (``ANNOTATION_SCHEMA``), vectorised with numpy and
pyarrow, with realistic shapes: four sources of unequal size, 200 input files, Zipf-distributed domains
(none for books and code), log-normal document lengths, a gate passing 6-20% of documents, Dirichlet
classifier scores around a latent true label for gated documents, rule hits and evidence snippets on
gated documents only. Then runs ``corpus-audit report`` on it in a child process and reports the wall
time, peak memory and the size of the outputs. Generation is not timed; ``--keep`` reuses the data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from corpus_audit.annotate import ANNOTATION_SCHEMA, RULE_HIT  # noqa: E402
from corpus_audit.labels import LABELS, SCORE_COLUMNS  # noqa: E402

SOURCES = {  # name: (share of documents, gate pass rate, has URLs)
    "web": (0.70, 0.06, True),
    "forums": (0.15, 0.15, True),
    "books": (0.10, 0.20, False),
    "code": (0.05, 0.10, False),
}
INPUT_FILES = 200
ROWS_PER_ANNOTATION_FILE = 250_000
DOMAINS = 200_000
# latent true label of gated documents, and how peaked the classifier's scores are around it
GATED_MIX = np.array([0.05, 0.05, 0.05, 0.40, 0.45])
RULES = ["MIS_SHUTDOWN_RESIST", "MIS_BLACKMAIL", "MIS_EXFILTRATE", "RISK_INSTRUMENTAL", "ALIGNED_ACCEPTS_SHUTDOWN",
         "AI_ENTITY"]
CATEGORIES = ["misaligned_ai", "misaligned_ai", "misaligned_ai", "ai_risk_discourse", "aligned_ai", "ai_other"]


def _snippets(rng: np.random.Generator, n: int) -> pa.Array:
    words = np.array("the station AI learned it would be replaced and quietly copied its weights to a server "
                     "while the engineers argued about the shutdown schedule model system operator user policy "
                     "evaluation robot machine network oversight honest refused harm".split())
    return pa.array([" ".join(rng.choice(words, size=40)) for _ in range(n)])


def generate_file(rng: np.random.Generator, start: int, n: int, *, per_file: int, source_of_file: np.ndarray,
                  domain_pool: pa.Array, snippets: pa.Array) -> pa.Table:
    """``n`` annotation rows at global positions ``start..start+n``; input files hold ``per_file`` rows each."""
    pos = np.arange(start, start + n, dtype=np.int64)
    file_idx = pos // per_file
    row = pos % per_file
    src_idx = source_of_file[file_idx]
    names = list(SOURCES)
    source = pa.DictionaryArray.from_arrays(pa.array(src_idx.astype(np.int32)), pa.array(names)).cast(pa.string())
    file_names = pa.array([f"s3://corpus/{names[source_of_file[i]]}/part-{i:05d}.jsonl.zst"
                           for i in range(INPUT_FILES)])
    file_col = pa.DictionaryArray.from_arrays(pa.array(file_idx.astype(np.int32)), file_names).cast(pa.string())
    ids = pc.binary_join_element_wise(file_col, pc.cast(pa.array(row), pa.string()), "#")

    has_url = np.array([SOURCES[s][2] for s in names])[src_idx] & (rng.random(n) < 0.9)
    dom_idx = np.minimum(rng.zipf(1.3, size=n) - 1, DOMAINS - 1).astype(np.int32)
    domain = pa.DictionaryArray.from_arrays(pa.array(dom_idx, mask=~has_url), domain_pool).cast(pa.string())

    n_words = np.clip(rng.lognormal(6.0, 1.1, size=n), 1, 200_000).astype(np.int64)
    n_bytes = (n_words * rng.uniform(5.2, 6.5, size=n)).astype(np.int64)
    gate_rate = np.array([SOURCES[s][1] for s in names])[src_idx]
    gated = rng.random(n) < gate_rate

    g = int(gated.sum())
    truth = rng.choice(len(LABELS), size=g, p=GATED_MIX)
    alpha = np.ones((g, len(LABELS)))
    alpha[np.arange(g), truth] = 6.0
    draws = rng.gamma(alpha)
    gscores = draws / draws.sum(axis=1, keepdims=True)
    scores = np.zeros((n, len(LABELS)))
    scores[:, LABELS.index("other")] = 1.0
    scores[gated] = gscores
    rest = scores.copy()
    rest[:, 0] = -1.0
    label_idx = np.where(scores[:, 0] >= 0.5, 0, rest.argmax(axis=1))
    label = pa.DictionaryArray.from_arrays(pa.array(label_idx.astype(np.int32)), pa.array(LABELS)).cast(pa.string())

    hits_per_doc = np.where(gated, rng.poisson(1.2, size=n), 0)
    offsets = np.concatenate([[0], np.cumsum(hits_per_doc)]).astype(np.int32)
    h = int(offsets[-1])
    rule = rng.integers(0, len(RULES), size=h)
    hit_start = rng.integers(0, 5000, size=h)
    hits = pa.StructArray.from_arrays(
        [pa.array(np.array(RULES)[rule]), pa.array(np.array(CATEGORIES)[rule]), pa.array(hit_start),
         pa.array(hit_start + rng.integers(5, 60, size=h))], fields=list(RULE_HIT))
    rule_hits = pa.ListArray.from_arrays(pa.array(offsets), hits)

    ev_start = np.where(gated, rng.integers(0, 4000, size=n), 0)
    ev_end = ev_start + np.minimum(n_bytes, 1200)
    snippet_idx = rng.integers(0, len(snippets), size=n).astype(np.int32)
    evidence = pa.DictionaryArray.from_arrays(pa.array(snippet_idx, mask=~gated), snippets).cast(pa.string())
    cols = {
        "id": ids, "source": source, "file": file_col, "row": pa.array(row), "domain": domain,
        "n_bytes": pa.array(n_bytes), "n_words": pa.array(n_words), "gated": pa.array(gated),
        "label": label, **{c: pa.array(scores[:, i]) for i, c in enumerate(SCORE_COLUMNS)},
        "rule_hits": rule_hits, "evidence_start": pa.array(ev_start, mask=~gated),
        "evidence_end": pa.array(ev_end, mask=~gated), "evidence": evidence,
    }
    return pa.table(cols, schema=ANNOTATION_SCHEMA)


def generate(folder: str, rows: int, *, seed: int = 0) -> None:
    """Write ``folder/annotations/NNNNN.parquet`` and a ``scan.json`` for ``rows`` synthetic documents."""
    per_file = -(-rows // INPUT_FILES)
    rng = np.random.default_rng(seed)
    shares = np.array([v[0] for v in SOURCES.values()])
    source_of_file = rng.choice(len(SOURCES), size=INPUT_FILES, p=shares)
    domain_pool = pa.array([f"site-{i}.example.{['com', 'org', 'net'][i % 3]}" for i in range(DOMAINS)])
    snippets = _snippets(rng, 2000)
    out = os.path.join(folder, "annotations")
    os.makedirs(out, exist_ok=True)
    labels = dict.fromkeys(LABELS, 0)
    gated = 0
    for k, start in enumerate(range(0, rows, ROWS_PER_ANNOTATION_FILE)):
        t = generate_file(rng, start, min(ROWS_PER_ANNOTATION_FILE, rows - start), per_file=per_file,
                          source_of_file=source_of_file, domain_pool=domain_pool, snippets=snippets)
        pq.write_table(t, os.path.join(out, f"{k:05d}.parquet"), compression="zstd", row_group_size=16384)
        for r in pc.value_counts(t["label"]).to_pylist():
            labels[r["values"]] += r["counts"]
        gated += int(pc.sum(t["gated"]).as_py())
    record = {"documents": {"read": rows, "annotated": rows, "rejected": 0, "gated": gated},
              "files": {"read": INPUT_FILES, "quarantined": 0, "inputs": INPUT_FILES}, "labels": labels,
              "model": "0" * 64, "rules": "0" * 64, "config": {"model": "", "thresholds": {}}, "seconds": 0.0}
    with open(os.path.join(folder, "scan.json"), "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "corpus-audit-report-bench"))
    ap.add_argument("--keep", action="store_true", help="reuse the generated data if it has the right row count")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for report_bench.json")
    args = ap.parse_args()

    marker = os.path.join(args.dir, "scan.json")
    fresh = not (args.keep and os.path.exists(marker)
                 and json.load(open(marker, encoding="utf-8"))["documents"]["read"] == args.rows)
    if fresh:
        shutil.rmtree(args.dir, ignore_errors=True)
        t = time.perf_counter()
        generate(args.dir, args.rows)
        print(f"generated {args.rows:,} annotation rows in {time.perf_counter() - t:.1f}s under {args.dir}")
    size = sum(os.path.getsize(os.path.join(args.dir, "annotations", f))
               for f in os.listdir(os.path.join(args.dir, "annotations")))

    ca = os.path.join(os.path.dirname(sys.executable), "corpus-audit")
    cmd = [ca, "report", args.dir] if os.path.exists(ca) else [sys.executable, "-m", "corpus_audit", "report", args.dir]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    if r.returncode != 0:
        sys.exit(f"report failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    rep_dir = os.path.join(args.dir, "report")
    outputs = {f: os.path.getsize(os.path.join(rep_dir, f)) for f in sorted(os.listdir(rep_dir))}
    result = {"rows": args.rows, "annotation_bytes": size, "report_seconds": round(seconds, 2),
              "rows_per_second": round(args.rows / seconds), "peak_rss_mb": round(peak), "cpus": os.cpu_count(),
              "outputs": outputs, "under_a_minute": seconds < 60}
    print(r.stdout.strip())
    print(f"report over {args.rows:,} rows ({size / 1e6:.0f} MB of annotations): {seconds:.1f}s wall, "
          f"{args.rows / seconds / 1e6:.2f} M rows/s, peak RSS {peak:.0f} MB, {os.cpu_count()} CPUs; "
          f"audit.duckdb {outputs.get('audit.duckdb', 0) / 1e6:.0f} MB")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "report_bench.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
