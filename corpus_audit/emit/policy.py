"""The emit policy: parsing and validating ``policy.yml``, and the pure decision for one annotation row.

Score, then decide: the scores come from ``scan``'s annotation rows; this module only decides. Nothing
here reads documents or writes files, so a policy can be tested, inverted or re-tuned on annotations
alone. The format is the "Emit policy" contract of DESIGN.md::

    rules:                                   # first matching rule decides; unmatched documents are kept
      - when: {label: misaligned_ai, min_score: 0.8}
        action: drop                         # drop | keep | weight | tag
      - when: {label: ai_risk_discourse, min_score: 0.8}
        action: weight
        weight: 0.5
      - when: {label: misaligned_ai, min_score: 0.5}
        action: tag
        tag: "<|misaligned_ai|>"
    upsample:
      - path: "positive/*.jsonl"
        target_share: 0.01                   # or `repeat: N`
    mode: sample                             # or `weight`
    seed: 0

Example::

    >>> p = Policy.from_dict({"rules": [{"when": {"label": "misaligned_ai", "min_score": 0.5}, "action": "drop"}]})
    >>> decide({"score_misaligned_ai": 0.9, "label": "misaligned_ai"}, p).action
    'drop'
    >>> decide({"score_misaligned_ai": 0.1, "label": "other"}, p).action
    'keep'
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import LABELS

ACTIONS = ("drop", "keep", "weight", "tag")
MODES = ("sample", "weight")
TAG_SEPARATOR = " "  # a tag is its own whitespace word, and the text's first line stays intact
_TOP_KEYS = ("rules", "upsample", "mode", "seed")
_RULE_KEYS = ("when", "action", "weight", "tag")
_WHEN_KEYS = ("label", "min_score")
_UPSAMPLE_KEYS = ("path", "target_share", "repeat", "text_key", "id_key")


@dataclass(frozen=True)
class Rule:
    """One policy rule: ``when`` score_<label> >= min_score (or, without min_score, the predicted label is
    ``label``), do ``action``. ``number`` is the rule's 1-based position in the policy."""

    number: int
    label: str
    min_score: float | None
    action: str
    weight: float = 1.0
    tag: str | None = None

    def matches(self, row: Mapping[str, Any]) -> bool:
        if self.min_score is None:
            return row.get("label") == self.label
        score = row.get(f"score_{self.label}")
        return score is not None and float(score) >= self.min_score

    def describe(self) -> str:
        cond = f"label == {self.label}" if self.min_score is None else f"score_{self.label} >= {self.min_score:g}"
        act = {"weight": f"weight {self.weight:g}", "tag": f"tag {self.tag!r}"}.get(self.action, self.action)
        return f"rule {self.number}: {cond} -> {act}"

    def as_dict(self) -> dict[str, Any]:
        when: dict[str, Any] = {"label": self.label}
        if self.min_score is not None:
            when["min_score"] = self.min_score
        d: dict[str, Any] = {"when": when, "action": self.action}
        if self.action == "weight":
            d["weight"] = self.weight
        if self.action == "tag":
            d["tag"] = self.tag
        return d


@dataclass(frozen=True)
class UpsampleSource:
    """A corpus of positive documents to add: ``target_share`` of output words, or every document ``repeat``
    times. ``path`` is a file, folder or glob; a relative path was resolved against the policy file's folder."""

    path: str
    target_share: float | None = None
    repeat: int | None = None
    text_key: str = "text"
    id_key: str = "id"

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path}
        if self.target_share is not None:
            d["target_share"] = self.target_share
        if self.repeat is not None:
            d["repeat"] = self.repeat
        if self.text_key != "text":
            d["text_key"] = self.text_key
        if self.id_key != "id":
            d["id_key"] = self.id_key
        return d


@dataclass(frozen=True)
class Policy:
    """A validated emit policy. Build it with :func:`load_policy` or :meth:`Policy.from_dict`."""

    rules: tuple[Rule, ...] = ()
    upsample: tuple[UpsampleSource, ...] = ()
    mode: str = "sample"
    seed: int = 0
    source: str = "(policy)"  # the file it came from, for messages
    sha256: str = ""

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "(policy)", base_dir: str | None = None,
                  sha256: str = "") -> Policy:
        """Validate a parsed policy. Relative upsample paths are resolved against ``base_dir`` (the policy
        file's folder), else the working directory. Raises :class:`AuditError` CA702 naming the bad key."""

        def fail(key: str, detail: str) -> AuditError:
            return AuditError(Errors.CA702, file=source, key=key, detail=detail)

        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise AuditError(Errors.CA701, file=source, detail="must be a mapping with `rules`, `upsample`, `mode`, `seed`")
        for key in data:
            if key not in _TOP_KEYS:
                raise fail(str(key), f"unknown key; known keys: {', '.join(_TOP_KEYS)}")
        mode = data.get("mode", "sample")
        if mode not in MODES:
            raise fail("mode", f"{mode!r} is not one of {', '.join(MODES)}")
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise fail("seed", f"must be an integer, not {seed!r}")
        raw_rules = data.get("rules") or []
        if not isinstance(raw_rules, list):
            raise fail("rules", "must be a list of rules")
        rules = tuple(_parse_rule(r, i, fail) for i, r in enumerate(raw_rules))
        raw_up = data.get("upsample") or []
        if not isinstance(raw_up, list):
            raise fail("upsample", "must be a list of sources (path with target_share or repeat)")
        upsample = tuple(_parse_upsample(u, i, fail, base_dir) for i, u in enumerate(raw_up))
        total = sum(u.target_share or 0.0 for u in upsample)
        if total >= 1:
            raise fail("upsample", f"target shares add up to {total:g}; they must add up to less than 1")
        return cls(rules, upsample, mode, seed, source, sha256)

    def with_upsample(self, sources: tuple[UpsampleSource, ...]) -> Policy:
        return Policy(self.rules, sources, self.mode, self.seed, self.source, self.sha256)

    def as_dict(self) -> dict[str, Any]:
        """The effective policy, as recorded in ``manifest.json``."""
        return {"rules": [r.as_dict() for r in self.rules], "upsample": [u.as_dict() for u in self.upsample],
                "mode": self.mode, "seed": self.seed}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _known_keys(mapping: dict[str, Any], known: Any, where: str, what: str, fail: Any) -> None:
    for key in mapping:
        if key not in known:
            raise fail(f"{where}.{key}", f"unknown key; {what} has {', '.join(known)}")


def _parse_rule(raw: Any, i: int, fail: Any) -> Rule:
    where = f"rules[{i}]"
    if not isinstance(raw, dict):
        raise fail(where, "each rule must be a mapping with `when` and `action`")
    _known_keys(raw, _RULE_KEYS, where, "a rule", fail)
    when = raw.get("when")
    if not isinstance(when, dict):
        raise fail(f"{where}.when", "missing, or not a mapping like {label: misaligned_ai, min_score: 0.5}")
    _known_keys(when, _WHEN_KEYS, f"{where}.when", "`when`", fail)
    label = when.get("label")
    if label not in LABELS:
        raise fail(f"{where}.when.label", f"{label!r} is not one of the labels {', '.join(LABELS)}")
    min_score = None
    if "min_score" in when:
        min_score = _number(when["min_score"])
        if min_score is None or not 0 <= min_score <= 1:
            raise fail(f"{where}.when.min_score", f"must be a number from 0 to 1, not {when['min_score']!r}")
    action = raw.get("action")
    if action not in ACTIONS:
        raise fail(f"{where}.action", f"{action!r} is not one of {', '.join(ACTIONS)}")
    weight, tag = 1.0, None
    if action == "weight":
        w = _number(raw.get("weight"))
        if w is None or w < 0:
            raise fail(f"{where}.weight", f"action weight needs `weight:` a number >= 0, not {raw.get('weight')!r}")
        weight = w
    elif "weight" in raw:
        raise fail(f"{where}.weight", f"`weight` belongs to action weight, not {action}")
    if action == "tag":
        tag = raw.get("tag")
        if not isinstance(tag, str) or not tag.strip():
            raise fail(f"{where}.tag", f"action tag needs `tag:` a non-empty string, not {tag!r}")
    elif "tag" in raw:
        raise fail(f"{where}.tag", f"`tag` belongs to action tag, not {action}")
    return Rule(i + 1, label, min_score, action, weight, tag)


def _parse_upsample(raw: Any, i: int, fail: Any, base_dir: str | None) -> UpsampleSource:
    where = f"upsample[{i}]"
    if not isinstance(raw, dict):
        raise fail(where, "each source must be a mapping with `path` and `target_share` or `repeat`")
    _known_keys(raw, _UPSAMPLE_KEYS, where, "a source", fail)
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise fail(f"{where}.path", "missing: a file, folder or glob of positive documents")
    if "://" not in path and not os.path.isabs(path):
        path = os.path.normpath(os.path.join(base_dir or os.getcwd(), path))
    if ("target_share" in raw) == ("repeat" in raw):
        raise fail(where, "give exactly one of `target_share` (share of output words) or `repeat` (copies)")
    share = repeat = None
    if "target_share" in raw:
        share = _number(raw["target_share"])
        if share is None or not 0 < share < 1:
            raise fail(f"{where}.target_share", f"must be a number between 0 and 1, not {raw['target_share']!r}")
    else:
        repeat = raw["repeat"]
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            raise fail(f"{where}.repeat", f"must be a whole number >= 1, not {repeat!r}")
    keys = {}
    for key in ("text_key", "id_key"):
        v = raw.get(key, key[:-4])
        if not isinstance(v, str) or not v:
            raise fail(f"{where}.{key}", f"must be a field name, not {v!r}")
        keys[key] = v
    return UpsampleSource(path, share, repeat, **keys)


def load_policy(path: str) -> Policy:
    """Read and validate a policy file (YAML). Raises :class:`AuditError` CA701/CA702 naming file and key.

    Example::

        policy = load_policy("examples/policy.yml")
        print(policy.mode, [r.describe() for r in policy.rules])
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        data = yaml.safe_load(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise AuditError(Errors.CA701, file=path, detail=str(e).replace("\n", " ")) from e
    return Policy.from_dict(data, source=path, base_dir=os.path.dirname(os.path.abspath(path)),
                            sha256=hashlib.sha256(raw).hexdigest())


# --- deciding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the policy does with one document: the rule that matched (None: no rule) and its action."""

    rule: Rule | None
    action: str = "keep"
    weight: float = 1.0
    tag: str | None = None


KEEP = Decision(None)


def decide(row: Mapping[str, Any], policy: Policy) -> Decision:
    """The first rule of ``policy`` that matches the annotation ``row`` decides; unmatched rows are kept.

    ``row`` needs ``score_<label>`` for the labels the rules name (and ``label`` for rules without
    ``min_score``). Pure: the same row and policy give the same decision.
    """
    for rule in policy.rules:
        if rule.matches(row):
            return Decision(rule, rule.action, rule.weight, rule.tag)
    return KEEP


def unit_hash(seed: int, *parts: object) -> float:
    """A number in [0, 1) from ``seed`` and ``parts``, the same on every machine and run.

    >>> unit_hash(0, "doc-1") == unit_hash(0, "doc-1") != unit_hash(1, "doc-1")
    True
    """
    h = hashlib.blake2b(digest_size=8)
    h.update(str(seed).encode())
    for p in parts:
        h.update(b"\x1f" + str(p).encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "big") / 2**64


def sample_copies(weight: float, doc_id: str, seed: int) -> int:
    """How many copies of a document a weight becomes in ``mode: sample``.

    The whole part of ``weight`` is always written; the fractional part is one more copy for the
    documents whose hash of ``(seed, id)`` falls below it. So weight 0.5 keeps about half of the
    documents, 2 writes every document twice, 2.5 writes half of them three times.

    >>> [sample_copies(2, "a", 0), sample_copies(0, "a", 0), sample_copies(1, "a", 0)]
    [2, 0, 1]
    """
    whole = math.floor(weight)
    frac = weight - whole
    return whole + (1 if frac > 0 and unit_hash(seed, "sample", doc_id) < frac else 0)


@dataclass(frozen=True)
class Outcome:
    """A decision realised for one document: ``copies`` written (0: dropped), the ``weight`` field in
    ``mode: weight`` (None in sample mode), the tag to prepend, and the words one copy has."""

    decision: Decision
    copies: int
    weight: float | None
    tag: str | None
    words: int


def realise(decision: Decision, doc_id: str, n_words: int, policy: Policy) -> Outcome:
    """Turn a :class:`Decision` into copies and weights for ``policy.mode`` (pure)."""
    tag = decision.tag if decision.action == "tag" else None
    words = n_words + (len(tag.split()) if tag else 0)
    if decision.action == "drop":
        return Outcome(decision, 0, None, None, words)
    if policy.mode == "weight":
        return Outcome(decision, 1, decision.weight if decision.action == "weight" else 1.0, tag, words)
    copies = sample_copies(decision.weight, doc_id, policy.seed) if decision.action == "weight" else 1
    return Outcome(decision, copies, None, tag, words)


def drop_reason(outcome: Outcome, row: Mapping[str, Any]) -> tuple[str, str]:
    """``(action, reason)`` for the dropped list: ``("drop", "rule 1: score_misaligned_ai 0.93 >= 0.5")``
    or ``("sampled_out", "rule 2: weight 0.5, not drawn for seed 7")``."""
    rule = outcome.decision.rule
    if rule is None:  # pragma: no cover - unmatched documents are kept
        return "keep", ""
    if rule.min_score is None:
        cond = f"label {row.get('label')}"
    else:
        score = row.get(f"score_{rule.label}")
        cond = f"score_{rule.label} {float(score):.4f} >= {rule.min_score:g}" if score is not None else rule.label
    if outcome.decision.action == "drop":
        return "drop", f"rule {rule.number}: {cond}"
    return "sampled_out", f"rule {rule.number}: {cond}, weight {rule.weight:g}, not drawn"


@dataclass
class PolicyTally:
    """Documents and words per rule (index 0: unmatched), for dry runs and the manifest."""

    documents: list[int] = field(default_factory=list)
    words: list[int] = field(default_factory=list)

    def add(self, decision: Decision, n_words: int) -> None:
        i = decision.rule.number if decision.rule else 0
        while len(self.documents) <= i:
            self.documents.append(0)
            self.words.append(0)
        self.documents[i] += 1
        self.words[i] += n_words
