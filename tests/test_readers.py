"""The reader finds inputs, reads every claimed format, and accounts for every record."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from corpus_audit.errors import AuditError
from corpus_audit.readers import ShardReader, SourceSpec, detect_format, discover_inputs, domain_of
from tests.corpus_fixtures import DOCS, write_all_formats, write_jsonl


def read_all(files, tmp_path, **kwargs):
    reader = ShardReader(files, ledger_dir=str(tmp_path / "ledger"), **kwargs)
    docs = list(reader.run(None, 0, 1))
    return docs, reader.ledger.counts


def test_detect_format_names_format_and_codec():
    assert detect_format("x/part.jsonl.zst") == ("jsonl", "zstd")
    assert detect_format("x/part.JSONL.GZ") == ("jsonl", "gzip")
    assert detect_format("x/a.parquet") == ("parquet", None)
    assert detect_format("CC-MAIN-1.warc.wet.gz") == ("warc", "gzip")
    with pytest.raises(AuditError) as e:
        detect_format("notes.txt")
    assert e.value.code == "CA108"


def test_every_format_is_read_with_file_row_and_source(tmp_path):
    expected = write_all_formats(str(tmp_path / "in"))
    files = discover_inputs([str(tmp_path / "in")])
    assert sorted(os.path.basename(f.path) for f in files) == sorted(expected)
    docs, counts = read_all(files, tmp_path)
    per_file: dict[str, int] = {}
    for d in docs:
        per_file[os.path.basename(d.metadata["file"])] = per_file.get(os.path.basename(d.metadata["file"]), 0) + 1
        assert d.text.strip()
        assert d.metadata["source"] == os.path.basename(os.path.dirname(d.metadata["file"]))
    assert per_file == expected
    assert counts.read == sum(expected.values()) and counts.rejected == 0
    warc_texts = [d.text for d in docs if d.metadata["file"].endswith("e.warc.gz")]
    assert warc_texts[0] == DOCS[4]["text"]  # HTML stripped, script dropped


def test_rows_are_positions_in_file_and_ids_fall_back_to_file_and_row(tmp_path):
    path = write_jsonl(str(tmp_path / "s" / "x.jsonl"), [{"text": "first one"}, {"text": "second", "id": "B"}])
    docs, _ = read_all(discover_inputs([path]), tmp_path)
    assert [d.metadata["row"] for d in docs] == [0, 1]
    assert docs[0].id == f"{path}#0" and docs[1].id == "B"


def test_globs_and_duplicates_resolve_to_sorted_unique_files(tmp_path):
    write_all_formats(str(tmp_path / "in"))
    files = discover_inputs([str(tmp_path / "in" / "*" / "*.jsonl*"), str(tmp_path / "in" / "plain")])
    paths = [f.path for f in files]
    assert paths == sorted(paths) and len(paths) == len(set(paths)) == 3


def test_no_inputs_is_a_coded_error(tmp_path):
    with pytest.raises(AuditError) as e:
        discover_inputs([str(tmp_path / "nothing-here")])
    assert e.value.code == "CA101"


def test_source_from_field_or_fixed_name(tmp_path):
    path = write_jsonl(str(tmp_path / "s" / "x.jsonl"), [{"text": "a", "meta_src": "cc"}, {"text": "b"}])
    docs, _ = read_all(discover_inputs([path]), tmp_path, source=SourceSpec.parse("field:meta_src"))
    assert [d.metadata["source"] for d in docs] == ["cc", "unknown"]
    docs, _ = read_all(discover_inputs([path]), tmp_path, source=SourceSpec.parse("name:crawl-2024"))
    assert {d.metadata["source"] for d in docs} == {"crawl-2024"}
    with pytest.raises(AuditError):
        SourceSpec.parse("folderx")


def test_domain_is_host_without_www():
    assert domain_of("https://www.Example.com/a?b") == "example.com"
    assert domain_of("not a url") is None and domain_of(None) is None


def test_bad_records_are_rejected_and_counted_good_ones_kept(tmp_path):
    good = [{"id": f"g{i}", "text": f"line {i} about the harbour ferry"} for i in range(3)]
    lines = [json.dumps(good[0]).encode(), b'{"id": "bad", "text": "unterminated', json.dumps({"id": "nt", "body": 1}).encode(),
             b'{"id": "u8", "text": "caf\xe9 \xff"}', b"[1, 2]", json.dumps(good[1]).encode(), b"",
             json.dumps({"id": "num", "text": 5}).encode(), json.dumps(good[2]).encode()]
    p = tmp_path / "in" / "mixed.jsonl"
    p.parent.mkdir()
    p.write_bytes(b"\n".join(lines) + b"\n")
    docs, counts = read_all(discover_inputs([str(p)]), tmp_path)
    assert [d.id for d in docs] == ["g0", "g1", "g2"]
    assert counts.read == 9 and counts.rejected == 6
    assert counts.reasons == {"malformed_json": 1, "missing_text": 2, "invalid_utf8": 1, "not_an_object": 1,
                              "blank_line": 1}
    rejected = [json.loads(x) for x in open(tmp_path / "ledger" / "rejected" / "00000.jsonl")]
    assert {r["line"] for r in rejected} == {2, 3, 4, 5, 7, 8}
    assert all(r["file"].endswith("mixed.jsonl") and r["code"].startswith("CA1") for r in rejected)


def test_invalid_utf8_can_be_replaced_instead(tmp_path):
    p = tmp_path / "in" / "u.jsonl"
    p.parent.mkdir()
    p.write_bytes(b'{"id": "u8", "text": "caf\xe9 ok"}\n')
    docs, counts = read_all(discover_inputs([str(p)]), tmp_path, invalid_utf8="replace")
    assert counts.rejected == 0 and docs[0].text == "caf\ufffd ok"


def test_truncated_gzip_is_quarantined_after_keeping_what_was_read(tmp_path):
    recs = [{"id": f"t{i}", "text": f"document {i} " + "words " * 30} for i in range(400)]
    blob = gzip.compress("".join(json.dumps(r) + "\n" for r in recs).encode())
    p = tmp_path / "in" / "t.jsonl.gz"
    p.parent.mkdir()
    p.write_bytes(blob[: len(blob) // 2])
    docs, counts = read_all(discover_inputs([str(p)]), tmp_path)
    assert 0 < len(docs) < 400 and counts.read == len(docs)
    assert len(counts.quarantined) == 1 and counts.quarantined[0]["code"] == "CA104"


def test_corrupt_parquet_is_quarantined(tmp_path):
    p = tmp_path / "in" / "broken.parquet"
    p.parent.mkdir()
    p.write_bytes(b"PAR1 this is not really parquet")
    docs, counts = read_all(discover_inputs([str(p)]), tmp_path)
    assert docs == [] and counts.quarantined[0]["code"] == "CA107"


def test_oversized_documents_are_rejected(tmp_path):
    path = write_jsonl(str(tmp_path / "s" / "x.jsonl"), [{"text": "x" * 5000}, {"text": "small"}])
    docs, counts = read_all(discover_inputs([path]), tmp_path, max_doc_bytes=1000)
    assert [d.text for d in docs] == ["small"] and counts.reasons == {"oversized": 1}


def test_tasks_split_files_round_robin(tmp_path):
    expected = write_all_formats(str(tmp_path / "in"))
    files = discover_inputs([str(tmp_path / "in")])
    reader = ShardReader(files, ledger_dir=str(tmp_path / "l"))
    seen = [f.path for r in range(3) for f in reader.files_for_task(r, 3)]
    assert sorted(seen) == sorted(f.path for f in files) and len(seen) == len(expected)
