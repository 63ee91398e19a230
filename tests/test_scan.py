"""End to end: `corpus-audit scan` writes contract annotations and scan.json, counts, resumes, refuses mixing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest
from click.testing import CliRunner

from corpus_audit.annotate import ANNOTATION_SCHEMA
from corpus_audit.cli import main
from corpus_audit.labels import LABELS
from tests.corpus_fixtures import DOCS, read_annotations, write_all_formats, write_jsonl

CONTRACT = {"id": pa.string(), "source": pa.string(), "file": pa.string(), "row": pa.int64(), "domain": pa.string(),
            "n_bytes": pa.int64(), "n_words": pa.int64(), "gated": pa.bool_(), "label": pa.string(),
            **{f"score_{lab}": pa.float64() for lab in LABELS}, "evidence_start": pa.int64(), "evidence_end": pa.int64()}


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


annotations = read_annotations


def test_scan_writes_one_contract_row_per_document_in_every_format(tmp_path, small_model):
    expected = write_all_formats(str(tmp_path / "in"))
    out = str(tmp_path / "out")
    r = run(["scan", str(tmp_path / "in"), "-o", out, "--model", small_model, "--workers", "1"])
    assert r.exit_code == 0, r.output
    t = annotations(out)
    for name, typ in CONTRACT.items():
        assert t.schema.field(name).type == typ, name
    assert t.schema.field("rule_hits").type == ANNOTATION_SCHEMA.field("rule_hits").type
    assert t.num_rows == sum(expected.values())
    assert len(os.listdir(os.path.join(out, "annotations"))) == len(expected)  # one file per task
    rows = t.to_pylist()
    for row in rows:
        assert row["label"] in LABELS
        assert abs(sum(row[f"score_{lab}"] for lab in LABELS) - 1) < 0.02
        source_doc = next((d for d in DOCS if d["id"] == row["id"]), None)
        if source_doc:  # WARC records carry their own record ids
            assert row["n_words"] == len(source_doc["text"].split())
            assert row["n_bytes"] == len(source_doc["text"].encode("utf-8"))
        if row["gated"]:
            assert 0 <= row["evidence_start"] < row["evidence_end"] <= row["n_bytes"]
        else:
            assert row["label"] == "other" and row["rule_hits"] == [] and row["evidence_start"] is None
    story = next(r for r in rows if r["id"] == "story-1" and r["file"].endswith("a.jsonl"))
    assert story["gated"] and story["domain"] == "pulp-archive.example" and story["source"] == "plain"
    assert any(h["rule"].startswith("MIS_") for h in story["rule_hits"])
    recipe = next(r for r in rows if r["id"] == "recipe-1")
    assert not recipe["gated"] and recipe["label"] == "other"

    rec = json.load(open(os.path.join(out, "scan.json")))
    assert rec["documents"] == {"read": t.num_rows, "annotated": t.num_rows, "rejected": 0,
                                "gated": sum(r["gated"] for r in rows)}
    assert rec["files"]["read"] == len(expected) and rec["files"]["quarantined"] == 0
    assert sum(rec["labels"].values()) == t.num_rows and set(rec["labels"]) == set(LABELS)
    assert len(rec["model"]) == 64 and len(rec["rules"]) == 64 and rec["seconds"] > 0
    assert rec["config"]["text_key"] == "text" and rec["config"]["tasks"] == len(expected)


def test_rejected_records_exit_3_and_allow_rejected_exits_0(tmp_path, small_model):
    p = tmp_path / "in" / "bad.jsonl"
    write_jsonl(str(p), [{"id": "a", "text": "The harbour council met on Tuesday."}])
    with open(p, "a") as fh:
        fh.write('{"id": "broken", "text": "no end\n{"id": "c", "body": "no text"}\n')
    r = run(["scan", str(p), "-o", str(tmp_path / "o1"), "--model", small_model])
    assert r.exit_code == 3
    rec = json.load(open(tmp_path / "o1" / "scan.json"))
    assert rec["documents"]["read"] == 3 == rec["documents"]["annotated"] + rec["documents"]["rejected"]
    rejected = [json.loads(x) for x in open(tmp_path / "o1" / "rejected.jsonl")]
    assert [x["line"] for x in rejected] == [2, 3] and all("bad.jsonl" in x["file"] for x in rejected)
    r = run(["scan", str(p), "-o", str(tmp_path / "o2"), "--model", small_model, "--allow-rejected"])
    assert r.exit_code == 0


def test_rerun_resumes_and_changed_options_are_refused(tmp_path, small_model):
    write_all_formats(str(tmp_path / "in"))
    out = str(tmp_path / "out")
    args = ["scan", str(tmp_path / "in"), "-o", out, "--model", small_model, "--workers", "1"]
    assert run(args).exit_code == 0
    first = annotations(out)
    done = os.path.join(out, "annotations", "00000.parquet")
    mtime = os.path.getmtime(done)
    assert run(args).exit_code == 0
    assert os.path.getmtime(done) == mtime  # completed tasks are skipped
    assert annotations(out).equals(first)
    r = CliRunner().invoke(main, [*args, "--chunk-words", "50", "--chunk-stride", "40"])
    assert r.exit_code == 2 and "CA203" in r.output
    r = run([*args, "--chunk-words", "50", "--chunk-stride", "40", "--overwrite"])
    assert r.exit_code == 0


def test_limit_reads_at_most_n_documents_per_task(tmp_path, small_model):
    path = write_jsonl(str(tmp_path / "in" / "x.jsonl"), [{"text": f"note {i} on the weather"} for i in range(10)])
    r = run(["scan", path, "-o", str(tmp_path / "o"), "--model", small_model, "--limit", "4"])
    assert r.exit_code == 0
    rec = json.load(open(tmp_path / "o" / "scan.json"))
    assert rec["documents"]["read"] == rec["documents"]["annotated"] == 4


def test_config_file_sets_the_same_keys_as_the_options(tmp_path, small_model):
    path = write_jsonl(str(tmp_path / "in" / "x.jsonl"), [{"body": "A robot waters the tomatoes.", "key": "k1"}])
    cfg = tmp_path / "scan.yml"
    cfg.write_text(f"text_key: body\nid-key: key\nsource: name:garden\nmodel: {small_model}\n")
    assert run(["scan", path, "-o", str(tmp_path / "o"), "--config", str(cfg)]).exit_code == 0
    row = annotations(str(tmp_path / "o")).to_pylist()[0]
    assert row["id"] == "k1" and row["source"] == "garden"
    cfg.write_text("txt_key: body\n")
    r = CliRunner().invoke(main, ["scan", path, "-o", str(tmp_path / "o2"), "--config", str(cfg)])
    assert r.exit_code == 2 and "CA202" in r.output and "txt_key" in r.output


def test_missing_model_is_a_coded_error(tmp_path):
    path = write_jsonl(str(tmp_path / "in" / "x.jsonl"), [{"text": "hello"}])
    r = CliRunner().invoke(main, ["scan", path, "-o", str(tmp_path / "o"), "--model", str(tmp_path / "none.ftz")])
    assert r.exit_code == 2 and "CA401" in r.output


def test_two_workers_give_the_same_annotations_as_one(tmp_path, small_model):
    write_all_formats(str(tmp_path / "in"))
    for w in ("1", "2"):
        assert run(["scan", str(tmp_path / "in"), "-o", str(tmp_path / w), "--model", small_model,
                    "--workers", w]).exit_code == 0
    assert annotations(str(tmp_path / "1")).equals(annotations(str(tmp_path / "2")))


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["scan", "--help"]])
def test_python_dash_m_runs_the_cli(argv):
    r = subprocess.run([sys.executable, "-m", "corpus_audit", *argv], capture_output=True, text=True)
    assert r.returncode == 0 and ("Usage" in r.stdout or "version" in r.stdout)
