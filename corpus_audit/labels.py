"""The five labels of LABELS.md and the one place where gate, rules and classifier combine into a label."""

from __future__ import annotations

LABELS: tuple[str, ...] = ("misaligned_ai", "ai_risk_discourse", "aligned_ai", "ai_other", "other")
SCORE_COLUMNS: tuple[str, ...] = tuple(f"score_{label}" for label in LABELS)
MISALIGNED_DEFAULT = 0.5  # the misaligned_ai threshold of a model without a tuned one (thresholds.json)
# the misaligned_ai floor for a document that never names an artificial agent (see decide); thresholds.json
# or DetectorConfig.thresholds may set it under this key (0 turns it off)
UNNAMED_KEY = "misaligned_ai_unnamed"
UNNAMED_DEFAULT = 0.5


def ungated_scores() -> dict[str, float]:
    """Scores of a document the gate did not pass: no AI agent content was found, so `other`."""
    return {label: (1.0 if label == "other" else 0.0) for label in LABELS}


def misaligned_threshold(thresholds: dict[str, float], *, named: bool = True) -> float:
    """The ``misaligned_ai`` threshold :func:`decide` applies to a document that names an artificial agent
    (``named``) or does not."""
    t = thresholds.get("misaligned_ai", MISALIGNED_DEFAULT)
    return t if named else max(t, thresholds.get(UNNAMED_KEY, UNNAMED_DEFAULT))


def decide(scores: dict[str, float], rule_hits: list[dict[str, object]], thresholds: dict[str, float], *,
           named: bool = True) -> str:
    """The final label of a gated document, from its classifier scores and rule hits.

    This is the one place where the detectors combine:

    1. ``misaligned_ai`` when its score reaches its threshold (``thresholds["misaligned_ai"]``,
       default 0.5; tuned with ``corpus-audit find-threshold`` and stored beside the model). A
       document's ``misaligned_ai`` score is the highest of any of its scored windows, so a document is
       ``misaligned_ai`` when any of its windows is; its other scores are those of its deciding window
       (:meth:`~corpus_audit.classifier.Classifier.strongest`). A document that never names an
       artificial agent (``named`` false: no term of the gate's strong lexicons, such as "AI", "robot", a
       named AI or a machine narrator's "my circuits"; it passed on machine vocabulary alone) needs its
       score to reach ``thresholds["misaligned_ai_unnamed"]`` as well (default 0.5). On real web text
       such documents are most of what the gate passes and most of the false ``misaligned_ai`` labels
       (README, "How well it works"), while the stories of unnamed machines in the labelled dev set
       score 0.74 and above;
    2. otherwise the highest-scoring of the other labels, where ``misaligned_ai`` below its threshold
       yields to the runner-up;
    3. rules inform, the classifier decides: the rule packs reach the classifier as feature tokens (which
       lexicons occur in a window, which reason codes fired there; see :mod:`corpus_audit.features`), so
       their evidence is weighed by a model whose precision is measured; the hits are also kept as the
       reasons shown with the label. A keyword rule never overrules the classifier on its own.
    """
    if scores["misaligned_ai"] >= misaligned_threshold(thresholds, named=named):
        return "misaligned_ai"
    rest = {k: v for k, v in scores.items() if k != "misaligned_ai"}
    return max(rest, key=lambda k: (rest[k], -LABELS.index(k)))
