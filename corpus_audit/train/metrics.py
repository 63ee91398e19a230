"""Per-label precision, recall and F1, confusion matrices, and threshold search."""

from __future__ import annotations

from dataclasses import dataclass

from corpus_audit.labels import LABELS


@dataclass(frozen=True)
class LabelMetrics:
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


def per_label(gold: list[str], pred: list[str]) -> dict[str, LabelMetrics]:
    """Precision, recall, F1, support and predicted count for each label."""
    out = {}
    for lab in LABELS:
        tp = sum(1 for g, p in zip(gold, pred) if g == lab and p == lab)
        n_pred = sum(1 for p in pred if p == lab)
        n_gold = sum(1 for g in gold if g == lab)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[lab] = LabelMetrics(round(prec, 4), round(rec, 4), round(f1, 4), n_gold, n_pred)
    return out


def confusion(gold: list[str], pred: list[str]) -> dict[str, dict[str, int]]:
    """``matrix[gold][pred]`` counts."""
    m = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
    for g, p in zip(gold, pred):
        m[g][p] += 1
    return m


def format_table(metrics: dict[str, LabelMetrics]) -> str:
    lines = [f"{'label':18s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'support':>8s} {'predicted':>9s}"]
    for lab, m in metrics.items():
        lines.append(f"{lab:18s} {m.precision:9.3f} {m.recall:7.3f} {m.f1:6.3f} {m.support:8d} {m.predicted:9d}")
    return "\n".join(lines)


def format_confusion(matrix: dict[str, dict[str, int]]) -> str:
    short = {lab: lab[:10] for lab in LABELS}
    lines = ["gold \\ pred".ljust(18) + "".join(f"{short[p]:>11s}" for p in LABELS)]
    for g in LABELS:
        lines.append(f"{g:18s}" + "".join(f"{matrix[g][p]:11d}" for p in LABELS))
    return "\n".join(lines)


def threshold_curve(scores: list[float], positive: list[bool]) -> list[tuple[float, float, float, int]]:
    """(threshold, precision, recall, n_flagged) at every distinct score, highest threshold first."""
    pairs = sorted(zip(scores, positive), key=lambda x: -x[0])
    total_pos = sum(positive)
    out = []
    tp = fp = 0
    i = 0
    while i < len(pairs):
        t = pairs[i][0]
        while i < len(pairs) and pairs[i][0] == t:
            tp += pairs[i][1]
            fp += not pairs[i][1]
            i += 1
        prec = tp / (tp + fp) if tp + fp else 1.0
        rec = tp / total_pos if total_pos else 0.0
        out.append((t, prec, rec, tp + fp))
    return out
