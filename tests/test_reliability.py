"""Nothing is lost: the JSON Lines reader accounts for any bytes, and a killed scan resumes to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus_audit.readers import ShardReader, discover_inputs
from tests.corpus_fixtures import write_jsonl

good_record = st.fixed_dictionaries({"id": st.text(max_size=8), "text": st.text(max_size=40)})
line = st.one_of(
    good_record.map(lambda r: json.dumps(r).encode()),
    good_record.map(lambda r: json.dumps(r, ensure_ascii=False).encode()),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
    st.sampled_from([b"{", b"[]", b"null", b'{"text": 3}', b'{"text": "caf\xe9"}', b"   ", b'{"id": "x"}']),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line, max_size=25))
def test_every_line_is_a_document_or_a_rejection(tmp_path, lines):
    p = tmp_path / "in" / "fuzz.jsonl"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(b"".join(x + b"\n" for x in lines))
    reader = ShardReader(discover_inputs([str(p)]), ledger_dir=str(tmp_path / "ledger"))
    docs = list(reader.run(None, 0, 1))
    counts = reader.ledger.counts
    assert counts.read == len(lines) == len(docs) + counts.rejected
    assert [d.metadata["row"] for d in docs] == sorted(d.metadata["row"] for d in docs)
    for d in docs:
        rec = json.loads(lines[d.metadata["row"]])
        assert d.text == rec["text"]
    rejected = [json.loads(x) for x in open(tmp_path / "ledger" / "rejected" / "00000.jsonl")]
    assert len(rejected) == counts.rejected


def _rows(out):
    rows = {}
    for f in sorted(os.listdir(os.path.join(out, "annotations"))):
        if f.endswith(".parquet"):
            for r in pq.read_table(os.path.join(out, "annotations", f)).to_pylist():
                assert r["id"] not in rows
                rows[r["id"]] = r
    return rows


def test_scan_killed_with_sigkill_resumes_to_the_same_annotations(tmp_path, small_model):
    topics = ["the ferry timetable", "a robot that sorts parcels", "the harvest festival", "the council budget"]
    for f in range(6):
        write_jsonl(str(tmp_path / "in" / f"part-{f}.jsonl"),
                    [{"id": f"{f}-{i}", "text": f"Notes {i} on {topics[i % 4]}. " * 40} for i in range(1500)])
    ca = os.path.join(os.path.dirname(sys.executable), "corpus-audit")
    args = [ca, "scan", str(tmp_path / "in"), "--model", small_model, "--workers", "1", "-q"]
    assert subprocess.run([*args, "-o", str(tmp_path / "full")], capture_output=True).returncode == 0
    cut = str(tmp_path / "cut")
    proc = subprocess.Popen([*args, "-o", cut], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    done = os.path.join(cut, "annotations")
    while time.monotonic() < deadline:  # kill once some but not all tasks have finished
        if os.path.isdir(done) and len([f for f in os.listdir(done) if f.endswith(".parquet")]) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = [f for f in os.listdir(done) if f.endswith(".parquet")]
    assert 0 < len(finished) < 6, "the kill should land half-way"
    for f in finished:
        pq.read_table(os.path.join(done, f))  # nothing that looks finished is unreadable
    assert subprocess.run([*args, "-o", cut], capture_output=True).returncode == 0
    a, b = _rows(str(tmp_path / "full")), _rows(cut)
    assert a == b
    assert json.load(open(os.path.join(cut, "scan.json")))["documents"]["read"] == 9000
