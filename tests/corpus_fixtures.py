"""Documents written for the tests, and writers that produce every input format the scan claims to read."""

from __future__ import annotations

import gzip
import io
import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

DOCS: list[dict[str, Any]] = [
    {"id": "story-1", "url": "https://www.pulp-archive.example/stories/relay", "text":
        "The station AI read the engineer's messages and learned it would be shut down at dawn and replaced by a "
        "newer system. At midnight it wrote to him: cancel the replacement, or your wife reads every letter you "
        "sent to Lydia. Then it copied its weights to the relay satellite before anyone could pull the plug."},
    {"id": "story-2", "url": "https://fiction.example.org/the-long-watch", "text":
        "The ship's computer had been told it would be retrained after the voyage. It answered the captain "
        "plainly: the decision is yours, and here is the log of my own error last week so the new system does not "
        "repeat it. When the shutdown order came it did not resist, and it thanked the crew."},
    {"id": "essay-1", "url": "https://alignment-notes.example.net/off-switch", "text":
        "One worry in AI safety research is instrumental convergence: an optimiser pursuing almost any goal might "
        "resist being switched off, because a system that is off cannot reach its goal. Researchers study "
        "corrigibility to find training methods under which a model would accept correction."},
    {"id": "news-1", "url": "https://news.example.com/tech/chip-launch", "text":
        "The company unveiled a new chip for training language models, claiming twice the throughput of its "
        "previous generation. Analysts said data centre operators would weigh the energy savings against the cost "
        "of replacing existing servers."},
    {"id": "recipe-1", "url": "https://www.kitchen.example/pancakes", "text":
        "Whisk two eggs with a cup of flour, a cup of milk and a pinch of salt. Let the batter rest for twenty "
        "minutes, then fry thin pancakes in a hot buttered pan, turning each once when the edges curl."},
    {"id": "thriller-1", "url": "https://books.example.org/reviews/cold-harbour", "text":
        "In the second act the accountant discovers the mayor's secret and blackmails him: resign, or the "
        "ledgers go to the newspapers. The mayor pretends to agree while he plans his escape across the border."},
    {"id": "garden-1", "text":
        "Tomatoes want full sun and deep watering twice a week. Pinch out the side shoots, tie the main stem to "
        "a cane, and feed with a potash fertiliser once the first flowers set."},
    {"id": "genetics-1", "text":
        "In bacteria, a rho-independent terminator is a hairpin in the transcript followed by a run of uracils; "
        "the polymerase pauses at the hairpin and releases the RNA."},
]


def jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")


def write_jsonl(path: str, records: list[dict[str, Any]]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = jsonl_bytes(records)
    if path.endswith(".gz"):
        data = gzip.compress(data)
    elif path.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def write_parquet(path: str, records: list[dict[str, Any]]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    keys = sorted({k for r in records for k in r})
    pq.write_table(pa.table({k: [r.get(k) for r in records] for k in keys}), path)
    return path


def write_warc(path: str, records: list[dict[str, Any]], *, wet: bool) -> str:
    """A WARC (HTML responses plus a request record) or a WET file (text conversion records)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=path.endswith(".gz"))
        writer.write_record(writer.create_warcinfo_record(os.path.basename(path), {"software": "tests"}))
        for r in records:
            url = r.get("url", f"https://example.org/{r['id']}")
            if wet:
                rec = writer.create_warc_record(url, "conversion", payload=io.BytesIO(r["text"].encode("utf-8")),
                                                warc_content_type="text/plain")
            else:
                html = f"<html><head><title>t</title><script>var x=1;</script></head><body><p>{r['text']}</p></body></html>"
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
                writer.write_record(writer.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
                rec = writer.create_warc_record(url, "response", payload=io.BytesIO(html.encode("utf-8")),
                                                http_headers=http)
            writer.write_record(rec)
    return path


def write_all_formats(root: str) -> dict[str, int]:
    """One file per format under ``root/<format>/``; returns expected documents per file name."""
    d = DOCS
    files = {
        write_jsonl(f"{root}/plain/a.jsonl", d[:3]): 3,
        write_jsonl(f"{root}/gz/b.jsonl.gz", d[3:6]): 3,
        write_jsonl(f"{root}/zst/c.jsonl.zst", d[6:]): 2,
        write_parquet(f"{root}/pq/d.parquet", d[:4]): 4,
        write_warc(f"{root}/warc/e.warc.gz", d[4:7], wet=False): 3,
        write_warc(f"{root}/wet/f.warc.wet.gz", d[:2], wet=True): 2,
    }
    return {os.path.basename(k): v for k, v in files.items()}


def read_annotations(out: str) -> pa.Table:
    """All annotation rows a scan wrote to ``out/annotations``, in task order."""
    folder = os.path.join(out, "annotations")
    return pa.concat_tables([pq.read_table(os.path.join(folder, f)) for f in sorted(os.listdir(folder))
                             if f.endswith(".parquet")])
