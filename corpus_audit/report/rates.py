"""Where the report's per-label true- and false-positive rates come from: given, measured with --eval, or the model card.

Adjusted prevalence needs, for each label, how often the classifier says it of documents that have
it (tpr) and of documents that do not (fpr). In order of preference:

1. rates given by the caller (``model_metrics``: a ``metrics.json``-shaped dict, or per-label
   ``{"tpr", "fpr", "positives"?, "negatives"?}``);
2. rates measured on labelled JSONL (``--eval``) with the scan's own model, rule packs and
   thresholds, through :func:`corpus_audit.train.evaluate.evaluate` (gate included, as in the scan);
3. ``metrics.json`` beside the model recorded in ``scan.json`` (its confusion matrix when present,
   else its per-label precision/recall); these come from the training data's validation split;
4. none: the report then shows raw shares only and says so.

Every result names its origin in one sentence (:attr:`Rates.source`), which the report prints.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import LABELS
from corpus_audit.report.stats import LabelRates


@dataclass
class Rates:
    """Per-label rates (None for a label they cannot be measured for) and a sentence naming their origin."""

    by_label: dict[str, LabelRates | None]
    kind: str  # "given", "eval", "model-card" or "none"
    source: str
    gate_recall: dict[str, float] | None = None

    @property
    def available(self) -> bool:
        return any(r is not None for r in self.by_label.values())

    def as_dict(self) -> dict[str, Any]:
        return {lab: (None if r is None else {"tpr": r.tpr, "fpr": r.fpr, "positives": r.positives,
                                              "negatives": r.negatives})
                for lab, r in self.by_label.items()}


def none(reason: str) -> Rates:
    return Rates(dict.fromkeys(LABELS), "none", reason)


def from_metrics(metrics: dict[str, Any], *, origin: str) -> dict[str, LabelRates | None]:
    """Per-label rates from a ``metrics.json``-shaped dict, or from per-label ``{"tpr", "fpr"}`` entries.

    Raises ``ValueError`` with a reason when the dict holds neither.
    """
    confusion = metrics.get("confusion")
    if isinstance(confusion, dict) and confusion:
        return {lab: LabelRates.from_confusion(confusion, lab) for lab in LABELS}
    validation = metrics.get("validation")
    if isinstance(validation, dict) and validation:
        n = int(metrics.get("valid_documents") or 0)
        if n <= 0:
            raise ValueError("a 'validation' block without 'valid_documents' gives no false-positive rate")
        out: dict[str, LabelRates | None] = {}
        for lab in LABELS:
            m = validation.get(lab)
            if not m or int(m.get("support", 0)) <= 0 or int(m["support"]) >= n:
                out[lab] = None
                continue
            pos = int(m["support"])
            tp = round(float(m["recall"]) * pos)
            fp = max(0, int(m["predicted"]) - tp)
            out[lab] = LabelRates(tp / pos, fp / (n - pos), pos, n - pos)
        return out
    per_label = {lab: metrics[lab] for lab in LABELS if isinstance(metrics.get(lab), dict)}
    if per_label:
        out = dict.fromkeys(LABELS)
        for lab, m in per_label.items():
            tpr, fpr = float(m["tpr"]), float(m["fpr"])
            if not (0 <= tpr <= 1 and 0 <= fpr <= 1):
                raise ValueError(f"{lab}: tpr and fpr must lie in [0, 1]")
            out[lab] = LabelRates(tpr, fpr, m.get("positives"), m.get("negatives"))
        return out
    raise ValueError(f"{origin} has no 'confusion', no 'validation' block and no per-label tpr/fpr")


def given(model_metrics: dict[str, Any]) -> Rates:
    try:
        by_label = from_metrics(model_metrics, origin="model_metrics")
    except (ValueError, KeyError, TypeError) as e:
        raise AuditError(Errors.CA604, path="model_metrics", detail=str(e)) from e
    return Rates(by_label, "given", "rates given by the caller (model_metrics)")


def _scan_model(scan_record: dict[str, Any]) -> str:
    return str(scan_record.get("config", {}).get("model") or "")


def from_model_card(scan_record: dict[str, Any]) -> Rates:
    """Rates from ``metrics.json`` beside the scan's model, if it is there and describes that model."""
    model = _scan_model(scan_record)
    if not model:
        return none("no rates: scan.json names no model; pass --eval FILE to measure them")
    path = os.path.join(os.path.dirname(model), "metrics.json")
    if not os.path.isfile(path):
        return none(f"no rates: the scan's model has no metrics.json beside it ({path}); "
                    "pass --eval FILE to measure them")
    try:
        with open(path, encoding="utf-8") as fh:
            metrics = json.load(fh)
        by_label = from_metrics(metrics, origin=path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AuditError(Errors.CA604, path=path, detail=str(e).splitlines()[0]) from e
    want, have = scan_record.get("model"), metrics.get("sha256")
    if want and have and want != have:
        return none(f"no rates: {path} describes another model file (sha256 {have[:12]}…, the scan used "
                    f"{want[:12]}…); pass --eval FILE to measure them")
    n = metrics.get("valid_documents", "?")
    kind = "confusion matrix" if metrics.get("confusion") else "per-label precision/recall"
    return Rates(by_label, "model-card", f"model card: {path} ({kind} on the training data's validation split of "
                 f"{n} documents; text of the same origin as the training data, so an optimistic measure)")


def scan_thresholds(cfg: dict[str, Any]) -> dict[str, float]:
    """The thresholds a scan applied, from its recorded config: a scan that recorded thresholds but no
    ``misaligned_ai_unnamed`` floor was made before the floor existed, so it applied none (0)."""
    from corpus_audit.labels import UNNAMED_KEY

    thresholds = {k: float(v) for k, v in (cfg.get("thresholds") or {}).items()}
    if thresholds and UNNAMED_KEY not in thresholds:
        thresholds[UNNAMED_KEY] = 0.0
    return thresholds


def from_eval(eval_path: str, scan_record: dict[str, Any]) -> Rates:
    """Rates measured on labelled JSONL with the scan's own model, rule packs, thresholds and chunking."""
    from corpus_audit.annotate import DetectorConfig
    from corpus_audit.classifier import file_sha256
    from corpus_audit.train.dataset import load_examples
    from corpus_audit.train.evaluate import evaluate

    cfg = scan_record.get("config", {})
    model = _scan_model(scan_record)
    if not model:
        raise AuditError(Errors.CA603, detail="scan.json names no model (was the folder written by `scan`?)")
    if not os.path.isfile(model):
        raise AuditError(Errors.CA603, detail=f"the scan's model {model} (recorded in scan.json) is not there")
    if scan_record.get("model") and file_sha256(model) != scan_record["model"]:
        raise AuditError(Errors.CA603, detail=f"the model file {model} changed since the scan (sha256 differs)")
    rules = cfg.get("rules") or None
    detectors = DetectorConfig(model_path=model, rules_dir=rules if rules and os.path.isdir(rules) else None,
                               thresholds=tuple(sorted(scan_thresholds(cfg).items())),
                               chunk_words=int(cfg.get("chunk_words", 200)),
                               chunk_stride=int(cfg.get("chunk_stride", 150)),
                               max_chunks=int(cfg.get("max_chunks", 0)))
    ev = evaluate(load_examples([eval_path]), detectors)
    by_label = {lab: LabelRates.from_confusion(ev.confusion, lab) for lab in LABELS}
    return Rates(by_label, "eval", f"--eval {eval_path}: {ev.n} labelled documents, measured with the scan's "
                 "model, rule packs and thresholds (gate included)", gate_recall=dict(ev.gate_recall))


def resolve(scan_record: dict[str, Any], *, eval_path: str | None, model_metrics: dict[str, Any] | None) -> Rates:
    """The rates the report uses, by the order of preference in this module's docstring."""
    if model_metrics is not None:
        return given(model_metrics)
    if eval_path:
        return from_eval(eval_path, scan_record)
    return from_model_card(scan_record)
