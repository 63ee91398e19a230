"""Build the bundled demo corpus (``demo/<source>/``) from its editable source (``demo_src/<source>.jsonl``).

Each source is split into two shards, one JSON Lines gzip and one Parquet, so the demo exercises both
readers. Output is deterministic (no gzip timestamp). Run: ``python -m corpus_audit.data.build_demo``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))


def build(src: str = os.path.join(HERE, "demo_src"), out: str = os.path.join(HERE, "demo")) -> dict[str, int]:
    shutil.rmtree(out, ignore_errors=True)
    counts = {}
    for name in sorted(os.listdir(src)):
        if not name.endswith(".jsonl"):
            continue
        source = name[: -len(".jsonl")]
        with open(os.path.join(src, name), encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        half = (len(records) + 1) // 2
        folder = os.path.join(out, source)
        os.makedirs(folder)
        with open(os.path.join(folder, f"{source}-00000.jsonl.gz"), "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                for r in records[:half]:
                    gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
        rest = records[half:]
        keys = sorted({k for r in rest for k in r})
        table = pa.table({k: [None if r.get(k) is None else str(r.get(k)) for r in rest] for k in keys})
        pq.write_table(table, os.path.join(folder, f"{source}-00001.parquet"), compression="zstd")
        counts[source] = len(records)
    return counts


if __name__ == "__main__":
    print(build())
