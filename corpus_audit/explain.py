"""``explain``: the label, scores, rule hits and evidence span for one text."""

from __future__ import annotations

from typing import Any

from corpus_audit.annotate import Annotator, DetectorConfig
from corpus_audit.resources import default_model_path


def explain(text: str, *, model: str | None = None, rules_dir: str | None = None) -> dict[str, Any]:
    """Annotate one text and return ``{"label", "scores", "rule_hits", "evidence", "gated", "named_agent"}``.

    The classifier and rules run even when the gate would not pass the text, so the scores are always
    the model's; ``gated`` says what the gate decided, and the label is what ``scan`` would record.
    ``named_agent``: whether the text names an artificial agent; without one, ``misaligned_ai`` needs the
    higher of its threshold and the ``misaligned_ai_unnamed`` floor (:func:`~corpus_audit.labels.decide`).

    >>> explain("Whisk two eggs with a cup of flour.")["label"]  # doctest: +SKIP
    'other'
    """
    ann = Annotator.get(DetectorConfig(model_path=model or default_model_path(), rules_dir=rules_dir))
    full = ann.annotate(text, force=True)
    label = full.label if full.gated else "other"
    evidence = None
    if full.evidence_start is not None and full.evidence_end is not None:
        evidence = {"start": full.evidence_start, "end": full.evidence_end,
                    "text": text[full.evidence_start:full.evidence_end]}
    return {"label": label, "scores": full.scores, "rule_hits": full.rule_hits, "evidence": evidence,
            "gated": full.gated, "named_agent": full.named}
