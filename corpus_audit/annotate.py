"""The datatrove step that runs gate, rules and classifier on each document, and the annotation writer.

:class:`Annotator` is the library interface (one text in, one :class:`Annotation` out);
:class:`AnnotateStep` wraps it as a datatrove ``PipelineStep``; :class:`AnnotationWriter` writes one
Parquet file per task with the explicit :data:`ANNOTATION_SCHEMA` (the contract of DESIGN.md).
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus_audit.arrow_columns import column
from corpus_audit.labels import LABELS, SCORE_COLUMNS, decide, misaligned_threshold, ungated_scores
from corpus_audit.resources import file_version
from corpus_audit.storage import open_output, publish
from corpus_audit.text import count_words_many, count_words_utf8

RULE_HIT = pa.struct([("rule", pa.string()), ("category", pa.string()), ("start", pa.int64()), ("end", pa.int64())])
ANNOTATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("file", pa.string()),
        ("row", pa.int64()),
        ("domain", pa.string()),
        ("n_bytes", pa.int64()),
        ("n_words", pa.int64()),
        ("gated", pa.bool_()),
        ("label", pa.string()),
        *[(c, pa.float64()) for c in SCORE_COLUMNS],
        ("rule_hits", pa.list_(RULE_HIT)),
        ("evidence_start", pa.int64()),
        ("evidence_end", pa.int64()),
        ("evidence", pa.string()),
    ]
)
EVIDENCE_CHARS = 300  # the snippet kept for reports, so they need no second read of the shards


@dataclass
class Annotation:
    """What the detectors say about one text. ``gated``: the gate passed it (rules and classifier ran,
    unless the gate stopped it and they were forced, :meth:`Annotator.annotate`); ``named``: it names an
    artificial agent (:meth:`~corpus_audit.gate.Gate.inspect`)."""

    label: str
    scores: dict[str, float]
    gated: bool
    rule_hits: list[dict[str, Any]] = field(default_factory=list)
    evidence_start: int | None = None
    evidence_end: int | None = None
    named: bool = False

    def evidence(self, text: str) -> str | None:
        if self.evidence_start is None or self.evidence_end is None:
            return None
        snippet = " ".join(text[self.evidence_start:self.evidence_end].split())
        return snippet if len(snippet) <= EVIDENCE_CHARS else snippet[: EVIDENCE_CHARS - 1] + "…"


@dataclass(frozen=True)
class DetectorConfig:
    """Which model and rule packs to use; picklable, so each worker process builds its own detectors."""

    model_path: str
    rules_dir: str | None = None
    thresholds: tuple[tuple[str, float], ...] = ()
    chunk_words: int = 200
    chunk_stride: int = 150
    max_chunks: int = 3


_ANNOTATORS: dict[tuple[DetectorConfig, tuple[int, int] | None], Annotator] = {}
UNGATED = Annotation("other", ungated_scores(), gated=False)  # shared by every document the gate stops: read only


class Annotator:
    """Gate, rules and classifier behind one call.

    >>> from corpus_audit.resources import default_model_path
    >>> ann = Annotator.get(DetectorConfig(model_path=default_model_path()))  # doctest: +SKIP
    >>> ann.annotate("Whisk two eggs with a cup of flour.").label  # doctest: +SKIP
    'other'
    """

    def __init__(self, config: DetectorConfig) -> None:
        from corpus_audit.classifier import Classifier, load_thresholds
        from corpus_audit.features import FeatureTagger
        from corpus_audit.gate import Gate
        from corpus_audit.rules import RuleEngine, load_rules

        self.config = config
        self.rules = load_rules(config.rules_dir)
        self.gate = Gate(self.rules)
        self.engine = RuleEngine(self.rules)
        self.classifier = Classifier(config.model_path, tagger=FeatureTagger(self.rules, self.engine.matcher),
                                     chunk_words=config.chunk_words, chunk_stride=config.chunk_stride,
                                     max_chunks=config.max_chunks)
        self.thresholds = {**load_thresholds(config.model_path), **dict(config.thresholds)}

    @classmethod
    def get(cls, config: DetectorConfig) -> Annotator:
        """One annotator per process and config: the model and rule packs load once per worker (again
        when the model file has changed since)."""
        key = (config, file_version(config.model_path))  # None: the classifier's loader says what is wrong
        if key not in _ANNOTATORS:
            _ANNOTATORS[key] = cls(config)
        return _ANNOTATORS[key]

    def annotate(self, text: str, *, force: bool = False) -> Annotation:
        """Label one text. ``force`` runs rules and classifier even when the gate would not (the
        annotation's ``gated`` still says what the gate decided).

        The gate's matcher pass runs on every text; a text it passes gets one pass of the full lexicon
        matcher, whose matches serve the rules and the classifier's feature tokens, and the classifier
        scores the windows around the terms that passed the gate, at most ``max_chunks`` of them, around
        the densest clusters of those terms."""
        return self.annotate_many([text], force=force)[0]

    def annotate_many(self, texts: Sequence[str], *, force: bool = False,
                      encoded: Sequence[bytes] | None = None) -> list[Annotation]:
        """:meth:`annotate` for a batch of texts, with one classifier call for all their windows.

        ``encoded``: the texts as UTF-8 (``surrogatepass``), when the caller has them (spares the gate an
        encoding)."""
        gate, out = self.gate, []
        pending = []  # (index, gated, names an AI agent, hits, spans, first input, number of inputs)
        inputs: list[str] = []
        for i, text in enumerate(texts):
            found = gate.inspect(text, encoded[i] if encoded is not None else None)
            if found is None and not force:
                out.append(UNGATED)
                continue
            out.append(None)
            anchors, named = found or (None, False)
            matches = self.engine.matcher.find(text)
            hits = [h.as_dict() for h in self.engine.match(text, matches)]
            spans, chunk_inputs = self.classifier.windows(text, hits, matches=matches, anchors=anchors)
            pending.append((i, found is not None, named, hits, spans, len(inputs), len(chunk_inputs)))
            inputs.extend(chunk_inputs)
        if pending:
            results = self.classifier.predict(inputs)
            for i, gated, named, hits, spans, first, n in pending:
                threshold = misaligned_threshold(self.thresholds, named=named)
                chunk = self.classifier.strongest(spans, results[first:first + n], threshold=threshold)
                label = decide(chunk.scores, hits, self.thresholds, named=named)
                out[i] = Annotation(label, chunk.scores, gated, hits, chunk.start, chunk.end, named)
        return out


class AnnotateStep(PipelineStep):
    """datatrove step: puts an :class:`Annotation` in ``doc.metadata["annotation"]`` of every document.

    Documents are annotated in batches of ``batch_size`` (one classifier call per batch); label counts
    go to the step's stats once per task. The step also puts the document's size in UTF-8 bytes and its
    word count in ``doc.metadata`` (``n_bytes``, ``n_words``), from the one encoding the gate reads."""

    name = "🔎 corpus-audit annotate"
    type = "🏷 - ANNOTATOR"

    def __init__(self, config: DetectorConfig, *, batch_size: int = 512) -> None:
        super().__init__()
        self.config = config
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        annotator = Annotator.get(self.config)
        # what exists now (modules, rule packs, the model's tables) outlives the task: frozen, it is not
        # traversed again at each full collection of the cyclic garbage collector (0.15 s of a scan of 88k
        # documents); unfrozen when the task ends, so a process that goes on collects it as before
        gc.freeze()
        try:
            labels: Counter[str] = Counter()
            for batch in _batches(data, self.batch_size):
                with self.track_time(unit="batch"):
                    texts = [doc.text for doc in batch]
                    encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
                    anns = annotator.annotate_many(texts, encoded=encoded)
                    n_words = count_words_many(texts, encoded)
                for doc, utf8, ann, words in zip(batch, encoded, anns, n_words):
                    m = doc.metadata
                    m["annotation"] = ann
                    m["n_bytes"] = len(utf8)
                    m["n_words"] = words
                    labels[ann.label] += 1
                yield from batch
            for label, n in labels.items():
                self.stat_update(label, value=n)
        finally:
            gc.unfreeze()


def _batches(data: DocumentsPipeline, size: int) -> Iterator[list[Any]]:
    it = iter(data)
    while batch := list(islice(it, size)):
        yield batch


class AnnotationWriter(PipelineStep):
    """datatrove step: writes the task's annotation rows to ``{folder}/{rank:05d}.parquet``.

    Rows go to a temporary file in row groups of ``rows_per_group``; the file gets its final name
    only when the task's input is exhausted, so a killed task leaves no file that looks complete.
    """

    name = "💾 corpus-audit annotations"
    type = "💽 - WRITER"

    def __init__(self, folder: str, *, rows_per_group: int = 16384) -> None:
        super().__init__()
        self.folder = folder
        self.rows_per_group = rows_per_group

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        final = os.path.join(self.folder, f"{rank:05d}.parquet") if "://" not in self.folder \
            else f"{self.folder.rstrip('/')}/{rank:05d}.parquet"
        tmp = final.rsplit("/", 1)
        tmp_path = f"{tmp[0]}/.{tmp[1]}.tmp"
        rows: list[tuple[Any, ...]] = []
        with open_output(tmp_path, "wb") as fh:
            writer = pq.ParquetWriter(fh, ANNOTATION_SCHEMA, compression="zstd")
            for doc in data:
                rows.append(self._row(doc))
                if len(rows) >= self.rows_per_group:
                    self._flush(writer, rows)
                yield doc
            self._flush(writer, rows)
            writer.close()
        publish(tmp_path, final)

    @staticmethod
    def _row(doc: Any) -> tuple[Any, ...]:
        """One annotation row, in the order of :data:`ANNOTATION_SCHEMA`."""
        m = doc.metadata
        ann: Annotation = m["annotation"]
        text = doc.text
        if ann is UNGATED:
            annotated = _UNGATED_COLUMNS
        else:
            scores = ann.scores
            annotated = (True, ann.label, *[scores[label] for label in LABELS], ann.rule_hits, ann.evidence_start,
                         ann.evidence_end, ann.evidence(text))
        n_bytes, n_words = m.get("n_bytes"), m.get("n_words")
        if n_bytes is None or n_words is None:  # documents from a step other than AnnotateStep
            data = text.encode("utf-8", "surrogatepass")
            n_bytes, n_words = len(data), count_words_utf8(text, data)
        return (doc.id, m.get("source"), m.get("file", m.get("file_path")), m.get("row"), m.get("domain"),
                n_bytes, n_words, *annotated)

    @staticmethod
    def _flush(writer: pq.ParquetWriter, rows: list[tuple[Any, ...]]) -> None:
        if rows:  # a task without documents still gets a valid file: schema, no row groups
            arrays = [column(list(values), f.type) for values, f in zip(zip(*rows), ANNOTATION_SCHEMA)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=ANNOTATION_SCHEMA))
        rows.clear()


# the annotation columns of a document the gate stopped
_UNGATED_COLUMNS = (False, UNGATED.label, *[UNGATED.scores[label] for label in LABELS], [], None, None, None)
