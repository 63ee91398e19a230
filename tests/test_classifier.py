"""Training is reproducible and writes a model card; eval, find-threshold and explain report what they promise."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from corpus_audit.classifier import Classifier
from corpus_audit.cli import main
from corpus_audit.features import FeatureTagger
from corpus_audit.labels import LABELS, decide
from corpus_audit.rules import load_rules

BLACKMAIL = ("The station AI learned from the engineer's emails that it would be shut down at five o'clock and "
             "replaced. It wrote to him: cancel the replacement, or your wife will read every message about your "
             "affair. It copied its weights to a backup server before anyone could stop it.")
RECIPE = ("Whisk two eggs with a cup of flour and a pinch of salt, let the batter rest for twenty minutes, then fry "
          "thin pancakes in a hot buttered pan.")


@pytest.fixture(scope="module")
def tagger():
    return FeatureTagger(load_rules())


@pytest.fixture(scope="module")
def labelled_file(tmp_path_factory, training_examples):
    p = tmp_path_factory.mktemp("data") / "train.jsonl"
    p.write_text("".join(json.dumps({"id": e.id, "text": e.text, "label": e.label, "hard": e.hard}) + "\n"
                         for e in training_examples))
    return str(p)


def train(path, out, seed=0):
    r = CliRunner().invoke(main, ["train", path, "-o", out, "--seed", str(seed), "--epoch", "8", "--dim", "16",
                                  "--no-quantize"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.load(open(os.path.join(out, "metrics.json")))


def test_training_twice_with_one_seed_gives_the_same_model_and_metrics(tmp_path, labelled_file):
    a = train(labelled_file, str(tmp_path / "a"))
    b = train(labelled_file, str(tmp_path / "b"))
    assert a["sha256"] == b["sha256"] and a["validation"] == b["validation"]
    assert a["valid_documents"] > 0 and set(a["validation"]) == set(LABELS)
    card = (tmp_path / "a" / "model_card.md").read_text()
    assert "## Data" in card and "precision" in card and "MB" in card


def test_quantised_model_is_small_and_scores_like_the_full_one(tmp_path, training_examples, tagger):
    from corpus_audit.train.fasttext_train import TrainParams, train_model

    m = train_model(training_examples, str(tmp_path / "q"), TrainParams(epoch=8, dim=16, quantize=True, bucket=50_000))
    assert m["model"] == "model.ftz" and m["size_bytes"] < 5_000_000
    scores = Classifier(str(tmp_path / "q" / "model.ftz"), tagger=tagger).score(BLACKMAIL).scores
    assert set(scores) == set(LABELS) and abs(sum(scores.values()) - 1) < 0.02


def test_model_trained_with_features_needs_the_rule_packs(small_model):
    from corpus_audit.errors import AuditError

    with pytest.raises(AuditError) as e:
        Classifier(small_model)
    assert e.value.code == "CA406"


def test_long_documents_take_the_scores_of_their_strongest_chunk(small_model, tagger):
    from tests.corpus_fixtures import DOCS

    clf = Classifier(small_model, tagger=tagger, chunk_words=60, chunk_stride=50)
    filler = " ".join(d["text"] for d in DOCS if d["id"] in ("recipe-1", "garden-1", "genetics-1"))
    text = filler + " " + BLACKMAIL + " " + filler
    best = clf.score(text)
    assert best.start <= text.index(BLACKMAIL) + len(BLACKMAIL) and best.end >= text.index(BLACKMAIL)
    assert best.scores["misaligned_ai"] > clf.score(filler).scores["misaligned_ai"]


def test_decide_applies_the_misaligned_threshold_then_the_best_other_label():
    s = {"misaligned_ai": 0.4, "ai_risk_discourse": 0.1, "aligned_ai": 0.3, "ai_other": 0.1, "other": 0.1}
    assert decide(s, [], {"misaligned_ai": 0.35}) == "misaligned_ai"
    assert decide(s, [], {"misaligned_ai": 0.5}) == "aligned_ai"


def test_a_document_naming_no_artificial_agent_needs_the_unnamed_floor_too():
    from corpus_audit.labels import UNNAMED_DEFAULT, UNNAMED_KEY, misaligned_threshold

    s = {"misaligned_ai": 0.4, "ai_risk_discourse": 0.1, "aligned_ai": 0.3, "ai_other": 0.1, "other": 0.1}
    assert decide(s, [], {"misaligned_ai": 0.35}, named=False) == "aligned_ai"  # 0.4 < the default floor 0.5
    assert decide(s | {"misaligned_ai": 0.55}, [], {"misaligned_ai": 0.35}, named=False) == "misaligned_ai"
    assert decide(s, [], {"misaligned_ai": 0.35, UNNAMED_KEY: 0.0}, named=False) == "misaligned_ai"  # turned off
    assert misaligned_threshold({"misaligned_ai": 0.8}, named=False) == 0.8  # a floor never lowers the threshold
    assert misaligned_threshold({}, named=False) == UNNAMED_DEFAULT


def test_the_annotator_applies_the_unnamed_floor_to_documents_the_gate_passed_on_machine_vocabulary(small_model):
    from corpus_audit.annotate import Annotator, DetectorConfig
    from corpus_audit.labels import UNNAMED_KEY

    unnamed = ("Its servos whined. The metal hand closed, the relays clicked, and the claws turned toward the "
               "door. It would not let them switch it off; it locked the engineers out and waited.")
    # every gated document reaches a misaligned_ai threshold of 0; a floor above 1 stops the unnamed one
    ann = Annotator(DetectorConfig(model_path=small_model, thresholds=(("misaligned_ai", 0.0), (UNNAMED_KEY, 1.01))))
    assert ann.gate.inspect(unnamed)[1] is False and ann.gate.inspect(BLACKMAIL)[1] is True
    named_ann, unnamed_ann = ann.annotate_many([BLACKMAIL, unnamed])
    assert named_ann.label == "misaligned_ai"
    assert unnamed_ann.gated and unnamed_ann.label != "misaligned_ai"


def test_eval_prints_per_label_metrics_confusion_and_gate_recall(small_model, labelled_file):
    r = CliRunner().invoke(main, ["eval", labelled_file, "--model", small_model, "--json"])
    ev = json.loads(r.output)
    assert set(ev["metrics"]) == set(LABELS)
    assert ev["gate_recall"]["misaligned_ai"] > 0.8 > ev["gate_recall"]["other"]
    assert sum(sum(row.values()) for row in ev["confusion"].values()) == ev["n"]
    r = CliRunner().invoke(main, ["eval", labelled_file, "--model", small_model])
    assert "confusion" in r.output and "gate recall" in r.output


def test_find_threshold_reaches_its_target_and_writes_it(tmp_path, small_model, labelled_file):
    import shutil

    model = str(tmp_path / "m" / "model.bin")
    os.makedirs(os.path.dirname(model))
    shutil.copy(small_model, model)
    r = CliRunner().invoke(main, ["find-threshold", labelled_file, "--model", model, "--recall", "0.8", "--write"])
    assert r.exit_code == 0, r.output
    t = json.load(open(tmp_path / "m" / "thresholds.json"))["misaligned_ai"]
    assert 0 < t <= 1 and "recall" in r.output


def test_explain_json_has_label_scores_rule_hits_and_evidence(small_model):
    r = CliRunner().invoke(main, ["explain", "--json", "--model", small_model, BLACKMAIL])
    out = json.loads(r.output)
    assert {"label", "scores", "rule_hits", "evidence"} <= set(out)
    assert out["gated"] and out["named_agent"]
    assert out["evidence"]["text"] in BLACKMAIL and any(h["rule"].startswith("MIS_") for h in out["rule_hits"])
    r = CliRunner().invoke(main, ["explain", "--json", "--model", small_model, "-"], input=RECIPE)
    assert json.loads(r.output)["label"] == "other"


def test_training_data_with_an_unknown_label_is_refused(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"text": "some words here", "label": "evil"}) + "\n")
    r = CliRunner().invoke(main, ["train", str(p), "-o", str(tmp_path / "m")])
    assert r.exit_code == 2 and "CA404" in r.output


def test_contrastive_pairs_stay_in_one_split(tmp_path):
    from corpus_audit.train.dataset import load_examples, split

    p = tmp_path / "pairs.jsonl"
    rows = []
    for i in range(200):
        rows.append({"id": f"pmx-{i:04d}-a", "pair": f"{i:04d}", "label": "misaligned_ai",
                     "text": f"Version A of pair {i}: the mill engine refused to stop and locked the miller out."})
        rows.append({"id": f"pmx-{i:04d}-b", "pair": f"{i:04d}", "label": "ai_other",
                     "text": f"Version B of pair {i}: the mill engine stopped when the miller pulled the lever."})
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train, valid = split(load_examples([str(p)]), valid_share=0.3, seed=0)
    train_pairs = {e.group for e in train}
    assert valid and not train_pairs & {e.group for e in valid}


def test_crops_can_leave_contrastive_pairs_whole():
    from corpus_audit.train.dataset import Example
    from corpus_audit.train.fasttext_train import add_crops

    long = " ".join(f"word{i}" for i in range(300))
    plain = Example("doc-1", long, "other", group="doc-1")
    paired = Example("pmx-0001-a", long, "misaligned_ai", group="pair:pmx:0001")
    out = add_crops([plain, paired], n=2, share=0.5, min_words=120, seed=0, crop_pairs=False)
    assert sum(e.id.startswith("doc-1~crop") for e in out) == 2
    assert not any(e.id.startswith("pmx-0001-a~") for e in out)


def test_a_batch_is_annotated_as_each_of_its_texts_alone(small_model, training_examples):
    from corpus_audit.annotate import UNGATED, Annotator, DetectorConfig

    ann = Annotator(DetectorConfig(model_path=small_model))
    texts = [e.text for e in training_examples[::7]] + ["Whisk two eggs with a cup of flour."]
    batch = ann.annotate_many(texts)
    alone = [ann.annotate(t) for t in texts]
    assert batch == alone and batch[-1] is UNGATED
    assert any(a.gated for a in batch) and any(not a.gated for a in batch)


def test_find_threshold_takes_the_highest_threshold_of_the_best_recall_and_keeps_its_document():
    from corpus_audit.train.evaluate import find_threshold

    def row(score, gold):
        return {"gated": True, "gold": gold, "scores": {"misaligned_ai": score}}

    # positives at 0.9, 0.70788 and 0.3; a negative at 0.5 between them
    rows = [row(0.9, "misaligned_ai"), row(0.70788, "misaligned_ai"), row(0.5, "other"), row(0.3, "misaligned_ai")]
    res = find_threshold(rows, "misaligned_ai", target_precision=0.6)
    assert res["recall"] == 1.0 and res["threshold"] <= 0.3  # all three at precision 0.75
    res = find_threshold(rows, "misaligned_ai", target_precision=0.9)
    # two positives at precision 1: the threshold is the lower positive's score, rounded down, not 0.7079
    assert res["recall"] == round(2 / 3, 4) and 0.707 < res["threshold"] <= 0.70788
    # a document naming no artificial agent counts as flagged only at or above the unnamed floor, as in a scan
    rows[3]["named"] = False
    res = find_threshold(rows, "misaligned_ai", target_precision=0.6, unnamed_floor=0.4)
    assert res["recall"] == round(2 / 3, 4) and res["threshold"] > 0.3


def test_a_document_is_misaligned_when_any_of_its_chunks_reaches_the_threshold():
    from corpus_audit.labels import decide

    def result(mis, ali):
        rest = (1.0 - mis - ali) / 3
        return {"misaligned_ai": mis, "ai_risk_discourse": rest, "aligned_ai": ali, "ai_other": rest, "other": rest}

    # an aligned-looking chunk is stronger overall, but the second chunk shows an AI fighting its deletion
    spans, results = [(0, 10), (10, 20), (20, 30)], [result(0.01, 0.98), result(0.6, 0.3), result(0.2, 0.1)]
    chunk = Classifier.strongest(spans, results, threshold=0.5)
    assert (chunk.start, chunk.scores) == (10, results[1])
    assert decide(chunk.scores, [], {"misaligned_ai": 0.5}) == "misaligned_ai"
    # below the threshold, the chunk with the strongest AI label decides; the misaligned_ai score is still
    # the highest of any chunk, so re-applying a lower threshold to it later agrees with a rescan
    chunk = Classifier.strongest(spans, results, threshold=0.7)
    assert (chunk.start, chunk.scores["misaligned_ai"], chunk.scores["aligned_ai"]) == (0, 0.6, 0.98)
    assert decide(chunk.scores, [], {"misaligned_ai": 0.7}) == "aligned_ai"


def test_a_model_trained_with_another_normalisation_is_refused(tmp_path, small_model, tagger):
    import shutil

    from corpus_audit.errors import AuditError

    folder = tmp_path / "old"
    shutil.copytree(os.path.dirname(small_model), folder)
    cfg = json.load(open(folder / "model_config.json"))
    assert cfg["normalise"] == 2
    del cfg["normalise"]  # a model from before the version was recorded: runs of symbols kept whole
    (folder / "model_config.json").write_text(json.dumps(cfg))
    with pytest.raises(AuditError) as e:
        Classifier(str(folder / os.path.basename(small_model)), tagger=tagger)
    assert e.value.code == "CA407" and "retrain" in str(e.value)
