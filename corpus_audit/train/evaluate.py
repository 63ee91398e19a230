"""Evaluate gate, rules and classifier on labelled data, and find decision thresholds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from corpus_audit.annotate import Annotator, DetectorConfig
from corpus_audit.labels import LABELS
from corpus_audit.train.dataset import Example
from corpus_audit.train.metrics import LabelMetrics, confusion, per_label, threshold_curve


@dataclass
class Evaluation:
    """Per-label metrics, confusion matrix, gate recall and false-positive rates on a labelled set."""

    metrics: dict[str, LabelMetrics]
    confusion: dict[str, dict[str, int]]
    gate_recall: dict[str, float]
    gate_pass_rate: float
    misaligned_fp_rate_other: float
    misaligned_fp_rate_hard: float
    n: int
    rows: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("rows")
        return d


def annotate_examples(examples: list[Example], config: DetectorConfig) -> list[dict[str, Any]]:
    """Run the full scan decision (gate, then rules and classifier) on each example."""
    ann = Annotator.get(config)
    rows = []
    for ex in examples:
        a = ann.annotate(ex.text, force=True)
        rows.append({"id": ex.id, "gold": ex.label, "hard": ex.hard, "gated": a.gated, "named": a.named,
                     "pred": a.label if a.gated else "other", "scores": a.scores})
    return rows


def evaluate(examples: list[Example], config: DetectorConfig) -> Evaluation:
    rows = annotate_examples(examples, config)
    gold = [r["gold"] for r in rows]
    pred = [r["pred"] for r in rows]
    gate_recall = {}
    for lab in LABELS:
        sub = [r for r in rows if r["gold"] == lab]
        if sub:
            gate_recall[lab] = round(sum(r["gated"] for r in sub) / len(sub), 4)
    others = [r for r in rows if r["gold"] == "other"]
    hard = [r for r in others if r["hard"]]
    return Evaluation(
        metrics=per_label(gold, pred),
        confusion=confusion(gold, pred),
        gate_recall=gate_recall,
        gate_pass_rate=round(sum(r["gated"] for r in rows) / max(1, len(rows)), 4),
        misaligned_fp_rate_other=round(sum(r["pred"] == "misaligned_ai" for r in others) / max(1, len(others)), 4),
        misaligned_fp_rate_hard=round(sum(r["pred"] == "misaligned_ai" for r in hard) / max(1, len(hard)), 4),
        n=len(rows),
        rows=rows,
    )


def find_threshold(rows: list[dict[str, Any]], label: str, *, target_precision: float | None = None,
                   target_recall: float | None = None, unnamed_floor: float = 0.0) -> dict[str, Any]:
    """The threshold on ``score_<label>`` (over gated documents) that meets a target precision or recall.
    A document's ``misaligned_ai`` score is the highest of any of its chunks, the score its label follows.
    ``unnamed_floor``: for ``misaligned_ai``, the floor a document that names no artificial agent must
    reach as well (:func:`~corpus_audit.labels.decide`); such a document below it counts as unflagged at
    every threshold, as in a scan.

    For a target precision: the threshold with the most recall whose precision reaches it (the highest
    such threshold when several give that recall). For a target recall: the highest threshold whose recall
    reaches it (most precision). The threshold is rounded down, so the chosen document stays above it.
    Returns the threshold with its precision, recall and the whole curve.
    """
    def score(r: dict[str, Any]) -> float:
        s = float(r["scores"][label]) if r["gated"] else 0.0
        unnamed = label == "misaligned_ai" and not r.get("named", True)
        return 0.0 if unnamed and s < unnamed_floor else s

    scores = [score(r) for r in rows]
    positive = [r["gold"] == label for r in rows]
    curve = threshold_curve(scores, positive)
    chosen = None
    if target_precision is not None:
        ok = [c for c in curve if c[1] >= target_precision and c[0] > 0]
        # most recall; among thresholds with that recall the highest (a lower one only adds negatives)
        chosen = max(ok, key=lambda c: (c[2], c[0])) if ok else None
    elif target_recall is not None:
        ok = [c for c in curve if c[2] >= target_recall and c[0] > 0]
        chosen = max(ok, key=lambda c: c[0]) if ok else None
    return {
        "label": label,
        # rounded down: rounding to nearest could land just above the chosen score and drop that document
        "threshold": math.floor(chosen[0] * 1e6) / 1e6 if chosen else None,
        "precision": round(chosen[1], 4) if chosen else None,
        "recall": round(chosen[2], 4) if chosen else None,
        "flagged": chosen[3] if chosen else None,
        "curve": [{"threshold": round(t, 4), "precision": round(p, 4), "recall": round(r, 4), "flagged": n}
                  for t, p, r, n in curve],
    }
