"""The report's statistics: Wilson intervals, word-weighted shares, and misclassification-adjusted prevalence.

All functions are vectorised over numpy arrays (one element per table row) and deterministic.

- Document shares (``k`` of ``n`` documents) get the 95% Wilson score interval. At ``k = 0`` its upper
  bound is ``z² / (n + z²)`` > 0, so a label never seen in a source still gets an honest upper bound.
- Word shares (words in documents of a label over all words) are ratio estimates. Their interval is a
  Wilson interval at an *effective sample size*: ``n_eff = p(1 - p) / Var(p)``, with ``Var(p)`` the
  linearised (delta-method) variance of the ratio; when ``p`` is 0 or 1 that variance is 0 and Kish's
  ``n_eff = (Σw)² / Σw²`` is used instead. ``n_eff`` is capped at the number of documents.
- Adjusted prevalence is Rogan-Gladen adjusted classify-and-count, one label against the rest:
  ``(p_obs - fpr) / (tpr - fpr)`` clipped to [0, 1], undefined when ``tpr <= fpr``. Its interval is a
  parametric bootstrap when the rates come with the counts they were measured on (the observed share,
  tpr and fpr each drawn from its Jeffreys Beta distribution, so a small evaluation set widens the
  interval); with bare rates, the Wilson bounds of the observed share are carried through the same
  formula, treating the rates as exact.

Every interval is widened, if rounding requires, to contain its estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_DRAWS = 4000


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def wilson_interval(successes: Any, total: Any, *, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``successes`` of ``total`` (arrays or scalars); ``(0, 1)`` where total is 0.

    >>> lo, hi = wilson_interval(0, 10)
    >>> float(lo), round(float(hi), 4)
    (0.0, 0.2775)
    """
    k, n = np.broadcast_arrays(_arr(successes), _arr(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        denom = n + z * z
        centre = (k + z * z / 2) / denom
        half = z / denom * np.sqrt(np.maximum(k * (n - k) / np.where(n > 0, n, 1.0), 0.0) + z * z / 4)
    lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
    hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return np.minimum(lo, p), np.maximum(hi, p)


def share_interval(successes: Any, total: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(share, ci_low, ci_high)``: the document share ``successes / total`` and its Wilson 95% interval."""
    k, n = np.broadcast_arrays(_arr(successes), _arr(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n > 0, k / n, 0.0)
    lo, hi = wilson_interval(k, n)
    return share, lo, hi


def weighted_share_interval(weight: Any, total_weight: Any, weight_sq: Any, total_weight_sq: Any,
                            documents: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(share, ci_low, ci_high)`` of a weighted share, such as the share of words in documents of a label.

    Args:
        weight: Σw over the documents with the label (their words).
        total_weight: Σw over all documents of the group.
        weight_sq: Σw² over the documents with the label.
        total_weight_sq: Σw² over all documents of the group.
        documents: number of documents in the group.
    """
    y, x, y2, x2, n = np.broadcast_arrays(_arr(weight), _arr(total_weight), _arr(weight_sq),
                                          _arr(total_weight_sq), _arr(documents))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(x > 0, y / x, 0.0)
        # Σ(y_i - r x_i)² where y_i = x_i for documents with the label and 0 otherwise
        resid = np.maximum(y2 * (1 - 2 * r) + r * r * x2, 0.0)
        var = np.where((x > 0) & (n > 1), resid * n / np.maximum(n - 1, 1) / np.where(x > 0, x * x, 1.0), 0.0)
        interior = (r > 0) & (r < 1) & (var > 0)
        n_eff = np.where(interior, r * (1 - r) / np.where(var > 0, var, 1.0),
                         np.where(x2 > 0, x * x / np.where(x2 > 0, x2, 1.0), 0.0))
    n_eff = np.minimum(n_eff, n)
    lo, hi = wilson_interval(r * n_eff, n_eff)
    return r, np.minimum(lo, r), np.maximum(hi, r)


@dataclass(frozen=True)
class LabelRates:
    """How often the classifier says a label: on documents that have it (tpr) and that do not (fpr).

    ``positives`` and ``negatives`` are the evaluation documents the rates were measured on; when
    known, the adjusted interval includes the rates' own uncertainty.
    """

    tpr: float
    fpr: float
    positives: int | None = None
    negatives: int | None = None

    @classmethod
    def from_confusion(cls, confusion: dict[str, dict[str, int]], label: str) -> LabelRates | None:
        """Rates of ``label`` from a ``confusion[gold][predicted]`` matrix; None without gold examples."""
        tp = confusion.get(label, {}).get(label, 0)
        pos = sum(confusion.get(label, {}).values())
        fp = sum(row.get(label, 0) for gold, row in confusion.items() if gold != label)
        neg = sum(sum(row.values()) for gold, row in confusion.items() if gold != label)
        if pos <= 0 or neg <= 0:
            return None
        return cls(tp / pos, fp / neg, pos, neg)

    @property
    def usable(self) -> bool:
        """True when the classifier separates the label from the rest at all (tpr > fpr)."""
        return self.tpr > self.fpr


def rogan_gladen(observed: Any, tpr: float, fpr: float) -> np.ndarray:
    """Adjusted classify-and-count: ``(observed - fpr) / (tpr - fpr)`` clipped to [0, 1]; NaN if tpr <= fpr.

    >>> float(rogan_gladen(0.1, 0.8, 0.05))
    0.06666666666666667
    """
    p = _arr(observed)
    if tpr <= fpr:
        return np.full_like(p, np.nan)
    return np.clip((p - fpr) / (tpr - fpr), 0.0, 1.0)


def adjusted_share(successes: Any, total: Any, rates: LabelRates, *, draws: int = BOOTSTRAP_DRAWS,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(adjusted, ci_low, ci_high, method)`` for observed ``successes`` of ``total``, corrected with ``rates``.

    ``method`` is ``"bootstrap"`` when ``rates`` carry their evaluation counts, else ``"wilson-propagated"``.
    All three arrays are NaN when ``rates`` are not usable (tpr <= fpr).
    """
    k, n = np.broadcast_arrays(_arr(successes), _arr(total))
    k, n = np.atleast_1d(k), np.atleast_1d(n)
    observed, lo_obs, hi_obs = share_interval(k, n)
    if not rates.usable:
        nan = np.full_like(observed, np.nan)
        return nan, nan, nan.copy(), "undefined"
    est = rogan_gladen(observed, rates.tpr, rates.fpr)
    if rates.positives and rates.negatives:
        rng = np.random.default_rng(seed)
        tp = rates.tpr * rates.positives
        fp = rates.fpr * rates.negatives
        tpr = rng.beta(tp + 0.5, rates.positives - tp + 0.5, size=draws)
        fpr = rng.beta(fp + 0.5, rates.negatives - fp + 0.5, size=draws)
        obs = rng.beta(k[:, None] + 0.5, n[:, None] - k[:, None] + 0.5, size=(len(k), draws))
        ok = tpr > fpr  # draws where the classifier does not separate the label tell nothing
        with np.errstate(divide="ignore", invalid="ignore"):
            adj = np.clip((obs[:, ok] - fpr[ok]) / (tpr[ok] - fpr[ok]), 0.0, 1.0)
        if adj.shape[1] == 0:
            lo, hi = np.zeros_like(est), np.ones_like(est)
        else:
            lo, hi = np.quantile(adj, [0.025, 0.975], axis=1)
        method = "bootstrap"
    else:
        lo = rogan_gladen(lo_obs, rates.tpr, rates.fpr)
        hi = rogan_gladen(hi_obs, rates.tpr, rates.fpr)
        method = "wilson-propagated"
    return est, np.minimum(lo, est), np.maximum(hi, est), method
