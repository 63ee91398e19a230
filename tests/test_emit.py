"""`corpus-audit emit`: policy semantics, accounting, upsampling, formats, determinism and refusals."""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import random

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus_audit.cli import main
from corpus_audit.emit import Policy, UpsampleSource, decide, load_policy, sample_copies
from corpus_audit.emit.emitter import emit
from corpus_audit.emit.plan import PositiveDoc, allocate, choose_copies, spread
from corpus_audit.emit.policy import realise, unit_hash
from corpus_audit.errors import AuditError
from corpus_audit.text import count_words
from tests.conftest import ROOT
from tests.corpus_fixtures import write_jsonl, write_parquet

POLICY = """rules:
  - when: {label: misaligned_ai, min_score: 0.5}
    action: drop
  - when: {label: ai_risk_discourse, min_score: 0.5}
    action: tag
    tag: "<|ai_risk|>"
  - when: {label: aligned_ai, min_score: 0.5}
    action: weight
    weight: 2
upsample:
  - path: positive/*.jsonl
    target_share: 0.05
mode: %(mode)s
seed: 7
"""
STORY = ("Story {i}. The station's assistant learned it would be replaced by a newer system. It wrote a careful "
         "handover note, flagged two open safety issues for the engineers, and thanked the crew.")


def row(**scores):
    base = {f"score_{k}": 0.0 for k in ("misaligned_ai", "ai_risk_discourse", "aligned_ai", "ai_other", "other")}
    return base | {f"score_{k}": v for k, v in scores.items()}


def policy_from(text, tmp_path, name="policy.yml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# --- the policy, on its own --------------------------------------------------------------------


def test_example_policy_parses_into_rules_upsampling_mode_and_seed():
    p = load_policy(os.path.join(ROOT, "examples", "policy.yml"))
    assert [r.action for r in p.rules] == ["drop", "weight", "tag"]
    assert p.rules[1].weight == 0.5 and p.rules[2].tag == "<|misaligned_ai|>"
    assert p.upsample[0].target_share == 0.01 and os.path.isabs(p.upsample[0].path)
    assert (p.mode, p.seed) == ("sample", 0) and len(p.sha256) == 64


@pytest.mark.parametrize("text, key", [
    ("rulez: []", "rulez"),
    ("rules: [{when: {label: evil_ai, min_score: 0.5}, action: drop}]", "rules[0].when.label"),
    ("rules: [{when: {label: misaligned_ai, min_score: 1.5}, action: drop}]", "rules[0].when.min_score"),
    ("rules: [{when: {label: misaligned_ai}, action: weight}]", "rules[0].weight"),
    ("rules: [{when: {label: misaligned_ai}, action: drop, tag: x}]", "rules[0].tag"),
    ("rules: [{when: {label: misaligned_ai}, action: burn}]", "rules[0].action"),
    ("upsample: [{path: p, target_share: 0.1, repeat: 2}]", "upsample[0]"),
    ("upsample: [{path: p, target_share: 0.6}, {path: q, target_share: 0.5}]", "upsample"),
    ("mode: mixed", "mode"),
    ("seed: seven", "seed"),
])
def test_malformed_policy_is_refused_naming_file_and_key(tmp_path, text, key):
    path = policy_from(text, tmp_path)
    with pytest.raises(AuditError) as e:
        load_policy(path)
    assert e.value.code == "CA702" and path in e.value.message and f"'{key}'" in e.value.message


def test_policy_that_is_not_yaml_is_refused(tmp_path):
    with pytest.raises(AuditError) as e:
        load_policy(policy_from("rules: [unclosed", tmp_path))
    assert e.value.code == "CA701"


def test_first_matching_rule_decides_and_unmatched_documents_are_kept():
    p = Policy.from_dict({"rules": [
        {"when": {"label": "ai_risk_discourse", "min_score": 0.5}, "action": "tag", "tag": "<r>"},
        {"when": {"label": "misaligned_ai", "min_score": 0.5}, "action": "drop"},
    ]})
    both = row(misaligned_ai=0.9, ai_risk_discourse=0.6)
    assert decide(both, p).action == "tag" and decide(both, p).rule.number == 1
    assert decide(row(misaligned_ai=0.9), p).action == "drop"
    assert decide(row(misaligned_ai=0.49, other=0.51), p).action == "keep"
    assert decide(row(misaligned_ai=0.49), p).rule is None


def test_rule_without_min_score_matches_the_predicted_label():
    p = Policy.from_dict({"rules": [{"when": {"label": "aligned_ai"}, "action": "drop"}]})
    assert decide(row(aligned_ai=0.4) | {"label": "aligned_ai"}, p).action == "drop"
    assert decide(row(aligned_ai=0.9) | {"label": "other"}, p).action == "keep"


def test_weight_half_keeps_a_deterministic_half_of_1000_documents():
    ids = [f"doc-{i}" for i in range(1000)]
    kept = [i for i in ids if sample_copies(0.5, i, 7)]
    assert 450 <= len(kept) <= 550
    assert kept == [i for i in ids if sample_copies(0.5, i, 7)]  # same seed, same documents
    assert kept != [i for i in ids if sample_copies(0.5, i, 8)]  # another seed, another draw


def test_weight_above_one_repeats_every_document():
    ids = [f"doc-{i}" for i in range(1000)]
    assert {sample_copies(2, i, 0) for i in ids} == {2}
    three = sum(sample_copies(2.5, i, 0) == 3 for i in ids)
    assert {sample_copies(2.5, i, 0) for i in ids} == {2, 3} and 450 <= three <= 550


def test_sample_mode_realises_weights_and_weight_mode_records_them():
    sample = Policy.from_dict({"rules": [{"when": {"label": "aligned_ai", "min_score": 0.5}, "action": "weight",
                                          "weight": 3}]})
    weight = Policy.from_dict({"rules": sample.as_dict()["rules"], "mode": "weight"})
    r = row(aligned_ai=0.8)
    assert (realise(decide(r, sample), "a", 10, sample).copies, realise(decide(r, sample), "a", 10, sample).weight) \
        == (3, None)
    out = realise(decide(r, weight), "a", 10, weight)
    assert (out.copies, out.weight) == (1, 3.0)
    assert realise(decide(row(), weight), "b", 10, weight).weight == 1.0


def test_upsampling_gets_as_close_to_the_target_as_one_document_allows():
    docs = [PositiveDoc(0, "p.jsonl", i, f"pos-{i}", w) for i, w in enumerate([300, 40, 120, 15, 80, 60])]
    src = UpsampleSource("p.jsonl", target_share=0.1)
    for target in (50, 333, 1234, 5000):
        chosen = choose_copies(docs, src, target, seed=1)
        got = sum(d.words for d, _ in chosen)
        assert abs(got - target) <= 300 / 2
        counts = [sum(1 for d, _ in chosen if d.id == x.id) for x in docs]
        assert max(counts) - min(counts) <= 1
    assert choose_copies(docs, src, 1234, seed=1) == choose_copies(docs, src, 1234, seed=1)
    assert len(choose_copies(docs, UpsampleSource("p.jsonl", repeat=2), None, seed=1)) == 12


def test_copies_are_spread_evenly_and_allocated_in_proportion():
    assert spread(4, 100) == [12, 37, 62, 87]
    assert allocate(10, [30, 10, 0, 60]) == [3, 1, 0, 6]
    assert sum(allocate(7, [1, 1, 1])) == 7
    assert unit_hash(7, "a") != unit_hash(7, "b")


# --- end to end on a scanned corpus ------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, small_model, training_examples):
    """Realistic documents of every label in four formats, scanned with the small model, plus positives."""
    from corpus_audit.config import ScanConfig
    from corpus_audit.scanner import scan

    root = tmp_path_factory.mktemp("emit")
    docs = [{"id": ex.id, "text": ex.text, "genre": ex.genre} for ex in training_examples]
    random.Random(3).shuffle(docs)
    src = root / "src"
    write_jsonl(str(src / "web" / "part-0.jsonl"), docs[:100])
    write_jsonl(str(src / "web" / "part-1.jsonl.gz"), docs[100:160])
    write_jsonl(str(src / "forum" / "part-2.jsonl.zst"), docs[160:230])
    write_parquet(str(src / "books" / "part-3.parquet"), [d | {"pages": i} for i, d in enumerate(docs[230:])])
    write_jsonl(str(root / "positive" / "stories.jsonl"),
                [{"id": f"pos-{i}", "text": STORY.format(i=i), "kind": "story"} for i in range(30)])
    scan([str(src)], str(root / "scan"), ScanConfig(model=small_model, workers=1))
    ann = pq.read_table(str(root / "scan" / "annotations")).to_pylist()
    return {"root": root, "src": str(src), "scan": str(root / "scan"), "ann": {r["id"]: r for r in ann},
            "texts": {d["id"]: d["text"] for d in docs}}


def policy_file(corpus, mode="sample", name="policy.yml"):
    return policy_from(POLICY % {"mode": mode}, corpus["root"], name)


def shard_paths(out):
    found = [p for p in glob.glob(f"{out}/**/*", recursive=True) if os.path.isfile(p)
             and p.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet"))]
    return sorted(found)


def read_shard(path):
    if path.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    if path.endswith(".zst"):
        import zstandard

        with open(path, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
    else:
        data = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    return [json.loads(line) for line in data.splitlines()]


def read_all(out):
    return {p: read_shard(p) for p in shard_paths(out)}


def run_emit(corpus, out, **kw):
    kw.setdefault("workers", 1)
    return emit([corpus["src"]], corpus["scan"], str(out), kw.pop("policy", None) or policy_file(corpus), **kw)


def is_positive(doc):
    return str(doc.get("id", "")).startswith("pos-")


def test_emit_follows_the_policy_and_accounts_for_every_document(corpus, tmp_path):
    res = run_emit(corpus, tmp_path / "out")
    m = json.load(open(tmp_path / "out" / "manifest.json"))
    assert m == json.loads(json.dumps(res.record))
    shards = read_all(tmp_path / "out")
    docs = [d for ds in shards.values() for d in ds]
    ann = corpus["ann"]
    drop = {i for i, r in ann.items() if r["score_misaligned_ai"] >= 0.5}
    tag = {i for i, r in ann.items() if i not in drop and r["score_ai_risk_discourse"] >= 0.5}
    double = {i for i, r in ann.items() if i not in drop | tag and r["score_aligned_ai"] >= 0.5}
    assert drop and tag and double  # the corpus exercises every action
    md = m["documents"]
    assert md["in"] == len(ann) == md["kept"] + md["dropped"] and md["dropped"] == len(drop)
    assert md["out"] == len(docs) == md["kept"] + md["repeated"] + md["upsampled"]
    assert md["upsampled"] == sum(map(is_positive, docs)) and md["repeated"] == len(double)
    ids = [d["id"] for d in docs]
    assert not drop & set(ids)
    texts = corpus["texts"]
    for d in docs:
        if not is_positive(d):
            original = texts[d.get("repeated_from") or d["id"]]
            assert d["text"] == ("<|ai_risk|> " + original if d["id"] in tag else original)
    assert {d["repeated_from"] for d in docs if d.get("repeated_from")} == double
    assert {d["id"] for d in docs if d.get("repeated_from")} == {f"{i}#rep2" for i in double}
    share = sum(count_words(d["text"]) for d in docs if is_positive(d)) / sum(count_words(d["text"]) for d in docs)
    assert 0.04 <= share <= 0.06 and abs(m["upsample"][0]["achieved_share"] - share) < 1e-6
    assert m["words"]["out"] == sum(count_words(d["text"]) for d in docs)
    for path, ds in shards.items():  # a positive keeps its other fields, in Parquet those of the shard's schema
        for d in filter(is_positive, ds):
            assert d["upsampled_from"] == d["id"].split("#")[0]
            assert d["kind"] == "story" if not path.endswith(".parquet") else "kind" not in d
    # every output is listed with its checksum and document count
    listed = {os.path.join(tmp_path / "out", o["path"]): o for o in m["outputs"]}
    assert set(listed) == set(shards)
    for p, o in listed.items():
        assert o["sha256"] == hashlib.sha256(open(p, "rb").read()).hexdigest() and o["documents"] == len(shards[p])
    # dropped documents are listed with their reason, and are nowhere else
    dropped = pq.read_table(tmp_path / "out" / ".dropped.parquet").to_pylist()
    assert {d["id"] for d in dropped} == drop and all(d["action"] == "drop" and d["rule"] == 1 for d in dropped)
    assert all(d["reason"].startswith("rule 1: score_misaligned_ai ") for d in dropped)


def test_outputs_keep_the_input_format_and_fields(corpus, tmp_path):
    run_emit(corpus, tmp_path / "out")
    shards = read_all(tmp_path / "out")
    names = sorted(os.path.relpath(p, tmp_path / "out") for p in shards)
    assert names == ["books/part-3-00000.parquet", "forum/part-2-00000.jsonl.zst", "web/part-0-00000.jsonl",
                     "web/part-1-00000.jsonl.gz"]
    books = shards[str(tmp_path / "out" / "books" / "part-3-00000.parquet")]
    originals = [d for d in books if not is_positive(d) and not d.get("repeated_from")]
    assert originals and all(isinstance(d["pages"], int) and d["genre"] is not None for d in originals)
    schema = pq.read_schema(str(tmp_path / "out" / "books" / "part-3-00000.parquet"))
    assert {"id", "text", "genre", "pages", "upsampled_from"} <= set(schema.names)
    with open(tmp_path / "out" / "web" / "part-1-00000.jsonl.gz", "rb") as fh:
        assert fh.read(10)[4:8] == b"\0\0\0\0"  # gzip header without a timestamp
    zst = shards[str(tmp_path / "out" / "forum" / "part-2-00000.jsonl.zst")]
    assert all(set(d) >= {"id", "text"} for d in zst)


def test_two_runs_give_byte_identical_shards_whatever_the_workers(corpus, tmp_path):
    run_emit(corpus, tmp_path / "a", max_shard_bytes=40_000)
    run_emit(corpus, tmp_path / "b", max_shard_bytes=40_000, workers=2)
    a, b = shard_paths(tmp_path / "a"), shard_paths(tmp_path / "b")
    assert [os.path.relpath(p, tmp_path / "a") for p in a] == [os.path.relpath(p, tmp_path / "b") for p in b]
    assert [open(p, "rb").read() for p in a] == [open(p, "rb").read() for p in b]
    assert open(tmp_path / "a" / ".dropped.parquet", "rb").read() == open(tmp_path / "b" / ".dropped.parquet", "rb").read()


def test_upsampled_documents_are_interleaved_through_all_shards(corpus, tmp_path):
    res = run_emit(corpus, tmp_path / "out", max_shard_bytes=30_000)
    shards = read_all(tmp_path / "out")
    assert len(shards) > len(res.plan.files)  # split by size
    for path, docs in shards.items():
        assert len(docs) < 5 or any(map(is_positive, docs)), f"no positives in {path}"
    stream = [d for p in sorted(shards) if "/web/part-0-" in p for d in shards[p]]
    positions = [i for i, d in enumerate(stream) if is_positive(d)]
    assert positions[0] < len(stream) / 4 and positions[-1] > len(stream) * 3 / 4


def test_weight_mode_writes_a_weight_field_and_repeats_nothing(corpus, tmp_path):
    run_emit(corpus, tmp_path / "out", policy=policy_file(corpus, "weight", "weight.yml"))
    docs = [d for ds in read_all(tmp_path / "out").values() for d in ds]
    ann = corpus["ann"]
    originals = [d for d in docs if not is_positive(d)]
    assert all("repeated_from" not in d or d["repeated_from"] is None for d in docs)
    assert len({d["id"] for d in originals}) == len(originals)
    for d in originals:
        r = ann[d["id"]]
        expected = 2.0 if r["score_aligned_ai"] >= 0.5 and r["score_ai_risk_discourse"] < 0.5 else 1.0
        assert d["weight"] == expected
    pos = [d for d in docs if is_positive(d)]
    assert pos and all(d["weight"] >= 1 and "#" not in d["id"] for d in pos)
    weighted = sum(count_words(d["text"]) * d["weight"] for d in docs)
    share = sum(count_words(d["text"]) * d["weight"] for d in pos) / weighted
    assert 0.04 <= share <= 0.06


def test_sampling_by_weight_half_drops_a_deterministic_share(corpus, tmp_path):
    pol = policy_from("rules: [{when: {label: other, min_score: 0}, action: weight, weight: 0.5}]\nseed: 3\n",
                      tmp_path)
    m = run_emit(corpus, tmp_path / "out", policy=pol).record
    n = m["documents"]["in"]
    assert m["documents"]["sampled_out"] == m["documents"]["dropped"] and 0.35 * n < m["documents"]["kept"] < 0.65 * n
    dropped = pq.read_table(tmp_path / "out" / ".dropped.parquet").to_pylist()
    assert {d["action"] for d in dropped} == {"sampled_out"}
    kept = {d["id"] for ds in read_all(tmp_path / "out").values() for d in ds}
    assert kept == {i for i in corpus["ann"] if sample_copies(0.5, i, 3)}


def test_repeat_upsampling_writes_every_positive_n_times_with_distinct_ids(corpus, tmp_path):
    pol = policy_from(f"upsample: [{{path: {corpus['root']}/positive/stories.jsonl, repeat: 3}}]\n", tmp_path)
    m = run_emit(corpus, tmp_path / "out", policy=pol).record
    pos = [d for ds in read_all(tmp_path / "out").values() for d in ds if is_positive(d)]
    assert m["documents"]["upsampled"] == len(pos) == 90 and len({d["id"] for d in pos}) == 90
    assert {d["id"] for d in pos if d["upsampled_from"] == "pos-4"} == {"pos-4", "pos-4#up2", "pos-4#up3"}


def test_dry_run_prints_the_plan_and_writes_nothing(corpus, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["emit", corpus["src"], "--annotations", corpus["scan"], "-o", str(out),
                                  "--policy", policy_file(corpus), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "dry run, nothing written" in r.output and "rule 1: score_misaligned_ai >= 0.5 -> drop" in r.output
    assert not out.exists()


def test_default_upsampling_uses_the_bundled_positive_corpus(corpus, tmp_path):
    from corpus_audit.resources import positive_corpus_dir

    if not glob.glob(os.path.join(positive_corpus_dir(), "*.jsonl")):
        pytest.skip("the bundled positive corpus is not in this checkout yet")
    pol = policy_from("rules: []\n", tmp_path)
    res = run_emit(corpus, tmp_path / "out", policy=pol, upsample_default=True, dry_run=True)
    assert res.record["upsample"][0]["path"] == positive_corpus_dir()
    assert res.record["upsample"][0]["target_share"] == 0.01 and res.record["documents"]["upsampled"] > 0


def test_annotations_of_other_inputs_are_refused(corpus, tmp_path):
    other = write_jsonl(str(tmp_path / "other" / "x.jsonl"), [{"id": "x1", "text": "Tomatoes want full sun."}])
    r = CliRunner().invoke(main, ["emit", other, "--annotations", corpus["scan"], "-o", str(tmp_path / "out"),
                                  "--policy", policy_file(corpus)])
    assert r.exit_code == 2 and "CA704" in r.output and "not among the inputs" in r.output
    assert not (tmp_path / "out").exists()


def test_a_file_changed_since_the_scan_is_refused_at_its_row(small_model, tmp_path):
    from corpus_audit.config import ScanConfig
    from corpus_audit.scanner import scan

    docs = [{"id": f"d{i}", "text": f"The harbour council met on day {i} to discuss the ferry timetable."}
            for i in range(5)]
    path = write_jsonl(str(tmp_path / "in" / "a.jsonl"), docs)
    scan([path], str(tmp_path / "scan"), ScanConfig(model=small_model, workers=1))
    docs[3]["id"] = "changed"
    write_jsonl(path, docs)
    with pytest.raises(AuditError) as e:
        emit([path], str(tmp_path / "scan"), str(tmp_path / "out"), policy_from("rules: []\n", tmp_path), workers=1)
    assert e.value.code == "CA705" and "row 3" in e.value.message and "'changed'" in e.value.message
    assert not (tmp_path / "out" / "manifest.json").exists() and not shard_paths(tmp_path / "out")
    docs[3]["id"] = "d3"
    write_jsonl(path, docs[:4])  # the file lost its last document: the resumed run says so
    with pytest.raises(AuditError) as e:
        emit([path], str(tmp_path / "scan"), str(tmp_path / "out"), policy_from("rules: []\n", tmp_path), workers=1,
             overwrite=True)
    assert e.value.code == "CA705" and "row 4" in e.value.message and "no document" in e.value.message


def test_records_rejected_at_scan_are_skipped_and_counted(small_model, tmp_path):
    from corpus_audit.config import ScanConfig
    from corpus_audit.scanner import scan

    path = write_jsonl(str(tmp_path / "in" / "a.jsonl"), [{"id": "a", "text": "The ferry left at noon."}])
    with open(path, "a") as fh:
        fh.write('{"id": "broken", "text": \n{"id": "c", "text": "The ferry came back at six."}\n')
    scan([path], str(tmp_path / "scan"), ScanConfig(model=small_model, workers=1))
    m = emit([path], str(tmp_path / "scan"), str(tmp_path / "out"), policy_from("rules: []\n", tmp_path),
             workers=1).record
    assert m["documents"]["rejected_at_scan"] == 1 and m["documents"]["in"] == m["documents"]["out"] == 2
    assert [d["id"] for d in read_shard(shard_paths(tmp_path / "out")[0])] == ["a", "c"]


def test_rerun_resumes_and_another_policy_needs_overwrite(corpus, tmp_path):
    out = tmp_path / "out"
    first = run_emit(corpus, out).record
    again = run_emit(corpus, out).record
    assert again["outputs"] == first["outputs"]
    other = policy_from("rules: []\n", tmp_path)
    with pytest.raises(AuditError) as e:
        run_emit(corpus, out, policy=other)
    assert e.value.code == "CA707"
    m = run_emit(corpus, out, policy=other, overwrite=True).record
    assert m["documents"]["dropped"] == 0 and m["documents"]["out"] == m["documents"]["in"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(AuditError) as e:
        run_emit(corpus, tmp_path / "busy", overwrite=True)
    assert e.value.code == "CA707" and (tmp_path / "busy" / "notes.txt").exists()


def test_warc_input_is_written_as_jsonl_gz_with_id_text_and_url(small_model, tmp_path):
    from corpus_audit.config import ScanConfig
    from corpus_audit.scanner import scan
    from tests.corpus_fixtures import DOCS, write_warc

    path = write_warc(str(tmp_path / "crawl" / "a.warc.wet.gz"), DOCS[:3], wet=True)
    scan([path], str(tmp_path / "scan"), ScanConfig(model=small_model, workers=1))
    m = emit([path], str(tmp_path / "scan"), str(tmp_path / "out"), policy_from("rules: []\n", tmp_path),
             workers=1).record
    assert [o["path"] for o in m["outputs"]] == ["crawl/a-00000.jsonl.gz"]
    docs = read_shard(str(tmp_path / "out" / "crawl" / "a-00000.jsonl.gz"))
    assert [d["text"] for d in docs] == [d["text"] for d in DOCS[:3]]
    assert all(d["id"].startswith("<urn:uuid:") and d["url"].startswith("http") for d in docs)


def test_the_example_policy_loads_and_its_upsample_source_exists():
    from corpus_audit.emit.policy import load_policy

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "policy.yml")
    policy = load_policy(path)
    assert policy.rules and all(glob.glob(u.path) for u in policy.upsample)
