"""The datatrove step that runs gate, rules and classifier on each document, and the annotation writer.

:class:`Annotator` is the library interface (one text in, one :class:`Annotation` out);
:class:`AnnotateStep` wraps it as a datatrove ``PipelineStep``; :class:`AnnotationWriter` writes one
Parquet file per task with the explicit :data:`ANNOTATION_SCHEMA` (the contract of DESIGN.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus_audit.labels import LABELS, SCORE_COLUMNS, decide, ungated_scores
from corpus_audit.storage import open_output, publish
from corpus_audit.text import count_words

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
    """What the detectors say about one text."""

    label: str
    scores: dict[str, float]
    gated: bool
    rule_hits: list[dict[str, Any]] = field(default_factory=list)
    evidence_start: int | None = None
    evidence_end: int | None = None

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


_ANNOTATORS: dict[DetectorConfig, Annotator] = {}


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
                                     chunk_words=config.chunk_words, chunk_stride=config.chunk_stride)
        self.thresholds = {**load_thresholds(config.model_path), **dict(config.thresholds)}

    @classmethod
    def get(cls, config: DetectorConfig) -> Annotator:
        """One annotator per process and config: the model and rule packs load once per worker."""
        if config not in _ANNOTATORS:
            _ANNOTATORS[config] = cls(config)
        return _ANNOTATORS[config]

    def annotate(self, text: str, *, force: bool = False) -> Annotation:
        """Label one text. ``force`` runs rules and classifier even when the gate would not.

        The gate's matcher pass runs on every text; a text it passes gets one pass of the full lexicon
        matcher, whose matches serve the rules and the classifier's feature tokens, and the classifier
        scores the chunks around the terms that passed the gate."""
        gate_matches = self.gate.matcher.find(text)
        if not self.gate.decide(text, gate_matches):
            if not force:
                return Annotation("other", ungated_scores(), gated=False)
            anchors = None
        else:
            anchors = [(m.start, m.end) for m in gate_matches]
        matches = self.engine.matcher.find(text)
        hits = [h.as_dict() for h in self.engine.match(text, matches)]
        chunk = self.classifier.score(text, hits, matches=matches, anchors=anchors)
        label = decide(chunk.scores, hits, self.thresholds)
        return Annotation(label, chunk.scores, True, hits, chunk.start, chunk.end)


class AnnotateStep(PipelineStep):
    """datatrove step: puts an :class:`Annotation` in ``doc.metadata["annotation"]`` of every document."""

    name = "🔎 corpus-audit annotate"
    type = "🏷 - ANNOTATOR"

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        annotator = Annotator.get(self.config)
        for doc in data:
            with self.track_time():
                ann = annotator.annotate(doc.text)
                doc.metadata["annotation"] = ann
            self.stat_update(ann.label)
            yield doc


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
        cols: dict[str, list[Any]] = {name: [] for name in ANNOTATION_SCHEMA.names}
        with open_output(tmp_path, "wb") as fh:
            writer = pq.ParquetWriter(fh, ANNOTATION_SCHEMA, compression="zstd")
            for doc in data:
                self._append(cols, doc)
                if len(cols["id"]) >= self.rows_per_group:
                    self._flush(writer, cols)
                yield doc
            self._flush(writer, cols)
            writer.close()
        publish(tmp_path, final)

    @staticmethod
    def _append(cols: dict[str, list[Any]], doc: Any) -> None:
        m = doc.metadata
        ann: Annotation = m["annotation"]
        text = doc.text
        cols["id"].append(doc.id)
        cols["source"].append(m.get("source"))
        cols["file"].append(m.get("file", m.get("file_path")))
        cols["row"].append(m.get("row"))
        cols["domain"].append(m.get("domain"))
        cols["n_bytes"].append(len(text.encode("utf-8")) if not text.isascii() else len(text))
        cols["n_words"].append(count_words(text))
        cols["gated"].append(ann.gated)
        cols["label"].append(ann.label)
        for label, col in zip(LABELS, SCORE_COLUMNS):
            cols[col].append(ann.scores[label])
        cols["rule_hits"].append(ann.rule_hits)
        cols["evidence_start"].append(ann.evidence_start)
        cols["evidence_end"].append(ann.evidence_end)
        cols["evidence"].append(ann.evidence(text))

    @staticmethod
    def _flush(writer: pq.ParquetWriter, cols: dict[str, list[Any]]) -> None:
        if cols["id"]:  # a task without documents still gets a valid file: schema, no row groups
            writer.write_table(pa.table(cols, schema=ANNOTATION_SCHEMA))
        for v in cols.values():
            v.clear()
