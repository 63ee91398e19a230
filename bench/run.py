"""Benchmarks: corpus-audit scan against datatrove baselines on the same shards, in the same run.

Usage: python bench/run.py [SHARD_DIR] [--out bench/results]

Measures, one worker each, wall time, documents/s and MB of text/s, and peak memory (max RSS):
  A. datatrove JsonlReader alone (the read limit of the engine we build on)
  B. datatrove JsonlReader -> FastTextClassifierFilter (whole document) -> JsonlWriter, with our model
  C. corpus-audit scan
  C'. the same scan with every document stopped after the gate (a diagnostic: start-up, reading, the gate,
      word counts and annotation writing, the cost no detector can remove)
  C''. the scan of the first shard alone: its peak memory against C's (memory must not grow with the corpus)
  D. the gate alone, in this process (documents/s over the same texts)
  E. datatrove JsonlReader -> JsonlWriter (a read-then-write copy of the shards)
  F. corpus-audit emit of the same shards with examples/policy.yml, from C's annotations
Results are printed as a table with ratios against A and B (E for F), and saved as JSON. Peak memory is
each command's own maximum resident set, measured by a wrapper process around it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_SHARDS = os.path.join(os.path.dirname(ROOT), "shared", "bench", "web")

BASELINE = r'''
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.base import PipelineStep

class Drain(PipelineStep):
    name = "drain"
    def run(self, data, rank=0, world_size=1):
        for d in data:
            yield d

shards, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
steps = [JsonlReader(shards, glob_pattern="*.jsonl.gz"), Drain()]
if mode == "copy":
    from datatrove.pipeline.writers import JsonlWriter
    steps = [steps[0], JsonlWriter(out + "/out")]
if mode == "fasttext":
    from datatrove.pipeline.filters import FastTextClassifierFilter
    from datatrove.pipeline.writers import JsonlWriter
    steps = [steps[0], FastTextClassifierFilter(sys.argv[4], remove_labels=[("misaligned_ai", 0.99)],
             newline_replacement=" ", filter_mode="DOCUMENT"), JsonlWriter(out + "/out")]
if __name__ == "__main__":
    LocalPipelineExecutor(pipeline=steps, tasks=4, workers=1, logging_dir=out + "/logs", skip_completed=False).run()
'''


# runs one command and prints its peak RSS (KiB): RUSAGE_CHILDREN of a fresh process covers that command only
PEAK = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); " \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"


# C': the CLI with Gate.anchors still matching every document but passing none on to the detectors
GATE_ONLY = ("import corpus_audit.gate as g; match = g.Gate.anchors; "
             "g.Gate.anchors = lambda self, text, data=None: match(self, text, data) and None; "
             "from corpus_audit.cli import main; main(prog_name='corpus-audit')")


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process (the wrapper's own start-up is in neither)."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", PEAK, *cmd], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode not in (0, 3):
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{r.stderr[-1500:]}")
    return dt, int(r.stderr.strip().splitlines()[-1]) / 1024


def corpus_stats(shards: str) -> tuple[int, int, list[str]]:
    docs = chars = 0
    texts: list[str] = []
    for f in sorted(os.listdir(shards)):
        if f.endswith(".jsonl.gz"):
            with gzip.open(os.path.join(shards, f), "rt", encoding="utf-8") as fh:
                for line in fh:
                    t = json.loads(line).get("text", "")
                    docs += 1
                    chars += len(t)
                    texts.append(t)
    return docs, chars, texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shards", nargs="?", default=DEFAULT_SHARDS)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--model", default=os.path.join(ROOT, "classifiers", "ca-default", "model.ftz"))
    args = ap.parse_args()
    if not os.path.isdir(args.shards):
        sys.exit(f"no shard folder {args.shards}; pass one of .jsonl.gz shards")
    ca = os.path.join(os.path.dirname(sys.executable), "corpus-audit")
    docs, chars, texts = corpus_stats(args.shards)
    mb = chars / 1e6
    work = tempfile.mkdtemp(prefix="ca-bench-")
    script = os.path.join(work, "baseline.py")
    with open(script, "w") as fh:
        fh.write(BASELINE)
    rows = {}
    rows["datatrove read-only"] = timed([sys.executable, script, args.shards, f"{work}/a", "read"])
    rows["datatrove fastText filter"] = timed([sys.executable, script, args.shards, f"{work}/b", "fasttext", args.model])
    rows["corpus-audit scan"] = timed([ca, "scan", args.shards, "-o", f"{work}/s", "--workers", "1", "-q",
                                       "--model", args.model])
    rows["scan, nothing past the gate"] = timed([sys.executable, "-c", GATE_ONLY, "scan", args.shards, "-o",
                                                 f"{work}/g", "--workers", "1", "-q", "--model", args.model])
    shard_files = sorted(f for f in os.listdir(args.shards) if f.endswith(".jsonl.gz"))
    first = os.path.join(args.shards, shard_files[0])
    one_shard = timed([ca, "scan", first, "-o", f"{work}/s1", "--workers", "1", "-q", "--model", args.model])
    copies = {"datatrove copy": timed([sys.executable, script, args.shards, f"{work}/c", "copy"]),
              "corpus-audit emit": timed([ca, "emit", args.shards, "--annotations", f"{work}/s", "-o", f"{work}/e",
                                          "--policy", os.path.join(ROOT, "examples", "policy.yml"),
                                          "--workers", "1", "-q"])}

    from corpus_audit.gate import Gate
    from corpus_audit.rules import load_rules

    gate = Gate(load_rules())
    t = time.perf_counter()
    passed = sum(gate.passes(x) for x in texts)
    gate_s = time.perf_counter() - t
    shutil.rmtree(work, ignore_errors=True)

    a, b = rows["datatrove read-only"][0], rows["datatrove fastText filter"][0]
    result = {"shards": args.shards, "documents": docs, "text_mb": round(mb, 1), "stages": {}}
    print(f"{docs:,} documents, {mb:.0f} MB of text, one worker each\n")
    print(f"{'pipeline':28s} {'wall s':>8s} {'docs/s':>9s} {'MB/s':>7s} {'peak MB':>8s} {'vs read':>8s} {'vs fastText':>11s}")
    for name, (s, peak) in rows.items():
        print(f"{name:28s} {s:8.2f} {docs / s:9,.0f} {mb / s:7.1f} {peak:8.0f} {a / s:8.2f} {b / s:11.2f}")
        result["stages"][name] = {"seconds": round(s, 3), "docs_per_s": round(docs / s), "mb_per_s": round(mb / s, 2),
                                  "peak_rss_mb": round(peak), "vs_read_only": round(a / s, 3), "vs_fasttext": round(b / s, 3)}
    c = copies["datatrove copy"][0]
    for name, (s, peak) in copies.items():
        print(f"{name:28s} {s:8.2f} {docs / s:9,.0f} {mb / s:7.1f} {peak:8.0f} {'':>8s} {'':>11s}   "
              f"vs copy {c / s:.2f}")
        result["stages"][name] = {"seconds": round(s, 3), "docs_per_s": round(docs / s), "mb_per_s": round(mb / s, 2),
                                  "peak_rss_mb": round(peak), "vs_datatrove_copy": round(c / s, 3)}
    print(f"{'gate alone (in process)':28s} {gate_s:8.2f} {docs / gate_s:9,.0f} {mb / gate_s:7.1f} {'':>8s} "
          f"{'':>8s} {b / gate_s:11.2f}   passes {passed / docs:.1%}")
    result["stages"]["gate alone"] = {"seconds": round(gate_s, 3), "docs_per_s": round(docs / gate_s),
                                      "vs_fasttext": round(b / gate_s, 3), "pass_rate": round(passed / docs, 4)}
    print(f"peak memory of the scan: {one_shard[1]:.0f} MB over the first shard, {rows['corpus-audit scan'][1]:.0f} MB "
          f"over all {len(shard_files)} shards")
    result["scan_peak_rss_mb"] = {"first shard": round(one_shard[1]), "all shards": round(rows["corpus-audit scan"][1])}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "bench.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
