"""Shared fixtures: a small real fastText model trained on the project's own labelled text."""

from __future__ import annotations

import os
import random

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Derived files (compiled Hyperscan databases, projected models) go to a folder of this test session,
    for the tests and the commands they start, not to the user's cache."""
    folder = str(tmp_path_factory.mktemp("cache"))
    saved = os.environ.get("CORPUS_AUDIT_CACHE")
    os.environ["CORPUS_AUDIT_CACHE"] = folder
    yield folder
    if saved is None:
        os.environ.pop("CORPUS_AUDIT_CACHE", None)
    else:
        os.environ["CORPUS_AUDIT_CACHE"] = saved


@pytest.fixture(scope="session")
def training_examples():
    """A deterministic sample of the project's training corpus: realistic documents of every label."""
    from corpus_audit.train.dataset import load_examples

    examples = load_examples([os.path.join(ROOT, "classifiers", "ca-default", "data")])
    rng = random.Random(0)
    by_label: dict[str, list] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex)
    sample = []
    for label in sorted(by_label):
        items = sorted(by_label[label], key=lambda e: e.id)
        rng.shuffle(items)
        sample += items[:60]
    return sample


@pytest.fixture(scope="session")
def small_model(tmp_path_factory, training_examples):
    """A small unquantised model: trained in seconds, real fastText, real text."""
    from corpus_audit.train.fasttext_train import TrainParams, train_model

    out = tmp_path_factory.mktemp("model")
    params = TrainParams(epoch=25, lr=0.5, dim=16, bucket=50_000, quantize=False, valid_share=0.2, min_count=1)
    train_model(training_examples, str(out), params)
    return str(out / "model.bin")
