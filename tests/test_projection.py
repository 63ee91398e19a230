"""The projected form of a fastText model reports the probabilities fastText reports for the model itself."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from corpus_audit.classifier import Classifier, load_scorer
from corpus_audit.features import model_input
from corpus_audit.projection import ProjectedModel, load_projected
from corpus_audit.resources import default_model_path

EDGE_LINES = [
    "",  # only the end-of-line token
    "zqxjv wqzzkx",  # no known word: only the end-of-line token and hashed bigrams
    "__label__other the ai",  # fastText reads a label token as a label, not a word
    "xxlexai_entity xxrulemis_self_preservation the ai copied its weights",
    "naïve café ٣ 0000 ' ’ - * 🙂",
    "a\x00b",  # fastText splits on NUL
    "word\tword  word\x0bword",
]


def fasttext_probabilities(model, lines, labels):
    """fastText's own predict, as a (lines x labels) matrix in ``labels`` order."""
    got, probs = model.predict(lines, k=-1)
    out = np.zeros((len(lines), len(labels)))
    for i, (ls, ps) in enumerate(zip(got, probs)):
        for label, p in zip(ls, ps):
            out[i, labels.index(label.removeprefix("__label__"))] = p
    return out


def fit(tmp_path, examples, name, train_kwargs, quantize_kwargs=None):
    """A fastText model trained in a fresh process (fastText keeps state between trainings in one process
    and can diverge to NaN there), on the project's own labelled text."""
    train = tmp_path / "train.txt"
    train.write_text("".join(f"__label__{ex.label} {model_input(ex.text, None)}\n" for ex in examples))
    path = str(tmp_path / name)
    script = ("import fasttext, sys\n"
              f"m = fasttext.train_supervised(input={str(train)!r}, epoch=5, dim=12, bucket=20_000, seed=1, "
              f"thread=1, verbose=0, **{train_kwargs!r})\n"
              + (f"m.quantize(input={str(train)!r}, dsub=2, verbose=0, **{quantize_kwargs!r})\n"
                 if quantize_kwargs is not None else "")
              + f"m.save_model({path!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True)
    return path


def lines_of(examples, n=150):
    return [model_input(ex.text[:1500], None) for ex in examples[:n]] + EDGE_LINES


def assert_same_as_fasttext(path, lines):
    import fasttext

    projected = load_projected(path)
    assert isinstance(projected, ProjectedModel)
    expected = fasttext_probabilities(fasttext.load_model(path), lines, projected.labels)
    got = projected.predict(lines)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5
    return got


def test_the_bundled_quantised_model_scores_the_same_projected(training_examples):
    got = assert_same_as_fasttext(default_model_path(), lines_of(training_examples))
    assert (got.argmax(axis=1) > 0).any() and (got.argmax(axis=1) == 0).any()  # not one label for everything


def test_an_unquantised_model_scores_the_same_projected(small_model, training_examples):
    assert_same_as_fasttext(small_model, lines_of(training_examples))


@pytest.mark.parametrize("qnorm,cutoff", [(False, 0), (True, 5_000)])
def test_a_quantised_model_pruned_or_not_with_or_without_quantised_norms(tmp_path, training_examples, qnorm, cutoff):
    path = fit(tmp_path, training_examples, "model.ftz", {"wordNgrams": 2},
               {"qnorm": qnorm, "cutoff": cutoff, "retrain": False})
    assert_same_as_fasttext(path, lines_of(training_examples))


def test_a_model_it_does_not_apply_to_is_scored_by_fasttext(tmp_path, training_examples):
    import fasttext

    path = fit(tmp_path, training_examples, "ova.bin", {"loss": "ova"})
    assert load_projected(path) is None
    scorer = load_scorer(path)
    lines = lines_of(training_examples, 20)
    expected = fasttext_probabilities(fasttext.load_model(path), lines, scorer.labels)
    assert np.abs(scorer.predict(lines) - expected).max() < 1e-6
    scores = Classifier(path).score(training_examples[0].text).scores
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_without_a_writable_temporary_folder_the_model_itself_scores(monkeypatch, tmp_path, small_model):
    import tempfile

    monkeypatch.setenv("CORPUS_AUDIT_CACHE", str(tmp_path / "cache"))  # empty: nothing to read back
    def refuse(*a, **k):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert load_projected(small_model) is None
    monkeypatch.undo()
    assert isinstance(load_projected(small_model), ProjectedModel)


def test_a_projected_model_is_kept_in_the_cache_and_read_back(monkeypatch, tmp_path, small_model, training_examples):
    from corpus_audit import projection

    monkeypatch.setenv("CORPUS_AUDIT_CACHE", str(tmp_path / "cache"))
    first = load_projected(small_model)
    assert [p.name.startswith("projected-") for p in (tmp_path / "cache").iterdir()] == [True]

    def no_projection(data):
        raise AssertionError("projected again")

    monkeypatch.setattr(projection, "project", no_projection)
    again = load_projected(small_model)  # read from the cache
    lines = lines_of(training_examples, 40)
    assert again.labels == first.labels
    assert np.array_equal(again.predict(lines), first.predict(lines))


def test_without_a_writable_cache_the_projection_goes_through_a_temporary_file(monkeypatch, tmp_path, small_model):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CORPUS_AUDIT_CACHE", str(blocker / "cache"))
    assert isinstance(load_projected(small_model), ProjectedModel)


def test_the_cache_keeps_the_most_recently_used_projected_models(monkeypatch, tmp_path, small_model):
    import os

    from corpus_audit import projection

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "hs-other.db").write_bytes(b"x")  # another kind of cached file: not counted, not deleted
    for i in range(projection._KEEP + 3):  # older entries, oldest first
        old = cache / f"projected-{i:032d}.bin"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    monkeypatch.setenv("CORPUS_AUDIT_CACHE", str(cache))
    load_projected(small_model)
    left = sorted(p.name for p in cache.iterdir() if p.name.startswith("projected-"))
    assert len(left) == projection._KEEP and (cache / "hs-other.db").exists()
    # the new model and the most recent older ones stay
    assert f"projected-{10:032d}.bin" in left and f"projected-{3:032d}.bin" not in left


def test_a_damaged_cache_file_is_rebuilt_not_read(monkeypatch, tmp_path, small_model, training_examples):
    monkeypatch.setenv("CORPUS_AUDIT_CACHE", str(tmp_path / "cache"))
    lines = lines_of(training_examples, 40)
    expected = load_projected(small_model).predict(lines)
    (cached,) = (tmp_path / "cache").iterdir()
    whole = cached.read_bytes()
    cached.write_bytes(whole[: len(whole) // 2])  # fastText itself would read this and score with zeros
    assert np.array_equal(load_projected(small_model).predict(lines), expected)
    assert cached.read_bytes() == whole  # rebuilt
