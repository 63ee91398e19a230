"""The fastText classifier: chunked scoring of a document over the five labels.

Long documents are scored in overlapping windows of words; the document takes the scores of its
strongest chunk, and that chunk's span is the evidence. The strongest chunk is the one with the highest
``misaligned_ai`` probability when that reaches the label's threshold (one passage of an AI fighting
its shutdown makes the document ``misaligned_ai``, however benign the rest), else the chunk with the
highest probability for any AI label. The model is loaded once per process and shared by every task
that process runs; it scores through its projected form (:mod:`corpus_audit.projection`: the same
probabilities, two to three times faster) when the model is a supervised softmax model, as ``train``
writes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from corpus_audit.errors import AuditError, Errors
from corpus_audit.features import FEATURES_VERSION, FeatureTagger, model_input
from corpus_audit.labels import LABELS, MISALIGNED_DEFAULT, UNNAMED_KEY
from corpus_audit.matcher import Match
from corpus_audit.resources import file_version
from corpus_audit.text import NORMALISE_VERSION, chunk_spans

AI_LABELS = tuple(label for label in LABELS if label != "other")
# models loaded in this process, by path and the file's modification time and size (a model rewritten in
# place, as ``train`` does when it refits on all the data, is loaded again)
_SCORERS: dict[tuple[str, int, int], Any] = {}


def _file_key(path: str) -> tuple[str, int, int]:
    version = file_version(path)
    if version is None:
        raise AuditError(Errors.CA401, path=path)
    return path, *version


@dataclass(frozen=True)
class ChunkScores:
    """Scores of the chunk that decides a document's label, and its character span."""

    scores: dict[str, float]
    start: int
    end: int


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_fasttext(path: str) -> Any:
    """The fastText model at ``path`` itself (CA402 when fastText cannot read it)."""
    from corpus_audit.projection import read_fasttext

    try:
        return read_fasttext(path)
    except ValueError as e:
        raise AuditError(Errors.CA402, path=path, detail=str(e)) from e


class _FastTextScorer:
    """fastText's own ``predict``, for a model the projection does not apply to."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.labels = [label.removeprefix("__label__") for label in model.get_labels()]
        self._column = {f"__label__{label}": i for i, label in enumerate(self.labels)}

    def predict(self, lines: Sequence[str]) -> np.ndarray:
        labels, probs = self.model.predict(list(lines), k=len(self.labels))
        out = np.zeros((len(lines), len(self.labels)))
        for i, (ls, ps) in enumerate(zip(labels, probs)):
            for label, p in zip(ls, ps):
                out[i, self._column[label]] = p
        return out


def load_scorer(path: str) -> Any:
    """What scores lines for the model at ``path`` (once per process): its projected form when it has one,
    else the fastText model itself. Either has ``labels`` and ``predict(lines)``, a (lines x labels) matrix
    of the probabilities fastText's ``predict`` reports."""
    from corpus_audit.projection import load_projected

    path = os.path.abspath(path)
    key = _file_key(path)
    if key in _SCORERS:
        return _SCORERS[key]
    try:
        scorer = load_projected(path)
    except ValueError:  # not a model file fastText writes: fastText's own loader says what is wrong
        scorer = None
    if scorer is None:
        scorer = _FastTextScorer(_load_fasttext(path))
    missing = set(LABELS) - set(scorer.labels)
    if missing:
        raise AuditError(Errors.CA403, path=path, detail=", ".join(f"__label__{m}" for m in sorted(missing)))
    _SCORERS[key] = scorer
    return scorer


def load_model_config(model_path: str) -> dict[str, Any]:
    """How the model was trained (``model_config.json`` beside it): its input features, chunking, rules hash."""
    p = os.path.join(os.path.dirname(os.path.abspath(model_path)), "model_config.json")
    if not os.path.isfile(p):
        return {}
    with open(p, encoding="utf-8") as fh:
        return dict(json.load(fh))


def load_thresholds(model_path: str) -> dict[str, float]:
    """Per-label decision thresholds stored beside the model (``thresholds.json``), if any."""
    p = os.path.join(os.path.dirname(os.path.abspath(model_path)), "thresholds.json")
    if not os.path.isfile(p):
        return {}
    with open(p, encoding="utf-8") as fh:
        data = json.load(fh)
    # other keys say how it was tuned
    return {k: float(v) for k, v in data.items() if k in LABELS or k == UNNAMED_KEY}


class Classifier:
    """Scores texts with a fastText model over the five labels.

    Args:
        model_path: a ``.ftz`` or ``.bin`` model trained by ``corpus-audit train``.
        tagger: feature tagger built from the rule packs, for models trained with feature tokens
            (their ``model_config.json`` says so); ignored for models trained on text alone.
        chunk_words: words per scoring window; longer documents are scored in windows.
        chunk_stride: words between the starts of consecutive windows.
        max_chunks: when scoring around anchors, at most this many windows (around the densest clusters
            of anchors); 0: no limit.
    """

    def __init__(self, model_path: str, *, tagger: FeatureTagger | None = None, chunk_words: int = 200,
                 chunk_stride: int = 150, max_chunks: int = 0) -> None:
        self.model_path = os.path.abspath(model_path)
        self.scorer = load_scorer(self.model_path)
        self._columns = [self.scorer.labels.index(label) for label in LABELS]
        self.config = load_model_config(self.model_path)
        trained = self.config.get("normalise", 1)
        if self.config and trained != NORMALISE_VERSION:
            raise AuditError(Errors.CA407, path=self.model_path, trained=trained, current=NORMALISE_VERSION)
        uses_features = self.config.get("features") == FEATURES_VERSION
        if uses_features and tagger is None:
            raise AuditError(Errors.CA406, path=self.model_path)
        self.tagger = tagger if uses_features else None
        self.chunk_words = chunk_words
        self.chunk_stride = chunk_stride
        self.max_chunks = max_chunks

    def predict(self, texts: list[str]) -> list[dict[str, float]]:
        """Label probabilities for model inputs (:func:`~corpus_audit.features.model_input`), one dict per text."""
        if not texts:
            return []
        probs = np.clip(self.scorer.predict(texts)[:, self._columns], 0.0, 1.0).tolist()
        return [dict(zip(LABELS, row)) for row in probs]

    def score(self, text: str, rule_hits: Sequence[dict[str, Any]] = (), *, matches: Sequence[Match] | None = None,
              anchors: Sequence[tuple[int, int]] | None = None,
              threshold: float = MISALIGNED_DEFAULT) -> ChunkScores:
        """Scores of ``text``'s strongest chunk and that chunk's character span.

        ``rule_hits`` are the document's hits (from :class:`~corpus_audit.rules.RuleEngine`); each chunk
        sees the reason codes of the hits that overlap it. ``matches`` are the document's lexicon matches,
        if known. ``anchors``: character spans of the terms that passed the gate; when given, only the
        chunks around them are scored (a chunk without an AI term cannot be the evidence of AI content).
        ``threshold``: the ``misaligned_ai`` threshold (see :meth:`strongest`).
        """
        spans, inputs = self.windows(text, rule_hits, matches=matches, anchors=anchors)
        return self.strongest(spans, self.predict(inputs), threshold=threshold)

    def windows(self, text: str, rule_hits: Sequence[dict[str, Any]] = (), *,
                matches: Sequence[Match] | None = None,
                anchors: Sequence[tuple[int, int]] | None = None) -> tuple[list[tuple[int, int]], list[str]]:
        """The chunks :meth:`score` would score: their character spans and their model inputs."""
        spans = chunk_spans(text, words=self.chunk_words, stride=self.chunk_stride, around=anchors,
                            max_chunks=self.max_chunks)
        inputs = []
        for s, e in spans:
            codes = {h["rule"] for h in rule_hits if h["start"] < e and h["end"] > s}
            inside = None if matches is None else [m for m in matches if m.start >= s and m.end <= e]
            inputs.append(model_input(text[s:e], self.tagger, codes, inside))
        return spans, inputs

    @staticmethod
    def strongest(spans: Sequence[tuple[int, int]], results: Sequence[dict[str, float]], *,
                  threshold: float = MISALIGNED_DEFAULT) -> ChunkScores:
        """The chunk that decides the document, from :meth:`predict`'s results.

        The chunk with the highest ``misaligned_ai`` probability when it reaches ``threshold`` (the
        label's threshold, as :func:`~corpus_audit.labels.decide` applies it); otherwise the chunk with
        the highest probability for any AI label. The returned ``misaligned_ai`` score is the highest of
        any chunk, so a threshold applied to it later (``find-threshold``, a report's threshold table, an
        emit policy's ``min_score``) says what a scan with that threshold would label (for a document that
        names no artificial agent, at or above the ``misaligned_ai_unnamed`` floor of
        :func:`~corpus_audit.labels.decide`); the other scores are the deciding chunk's.
        """
        peak_i = max(range(len(spans)), key=lambda i: results[i]["misaligned_ai"])
        peak = results[peak_i]["misaligned_ai"]
        if peak >= threshold:
            best = peak_i
        else:
            best = max(range(len(spans)), key=lambda i: max(results[i][label] for label in AI_LABELS))
        scores = results[best] if best == peak_i else {**results[best], "misaligned_ai": peak}
        return ChunkScores(scores, spans[best][0], spans[best][1])
