"""Rule packs: loading and validating ``rules/*.yml``, and matching their patterns with spaCy.

A pack holds named lexicons, the gate's choice of lexicons, and co-occurrence patterns with reason
codes (see ``rules/core.yml`` for the format). :func:`load_rules` merges every pack of a folder into
one :class:`RuleSet`; :class:`RuleEngine` runs its patterns over a text and returns rule hits with
character offsets.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import LABELS
from corpus_audit.resources import default_rules_dir


@dataclass(frozen=True)
class Lexicon:
    name: str
    terms: tuple[str, ...]  # matched case-insensitively
    cased: tuple[str, ...]  # matched exactly as written
    description: str = ""


@dataclass(frozen=True)
class Pattern:
    code: str
    category: str
    all_of: tuple[tuple[str, ...], ...]  # every group must hit; a group is satisfied by any of its lexicons
    unless: tuple[str, ...]
    window: int | None  # None: same sentence; else the number of tokens
    description: str = ""


@dataclass
class GateSpec:
    """Strong lexicons pass a document at once; weighted lexicons add ``weight`` per occurrence (at most
    ``max_per_term`` occurrences of one term count) and the document passes when the sum reaches 1."""

    lexicons: tuple[str, ...] = ()
    weighted: dict[str, float] = field(default_factory=dict)
    max_per_term: int = 2


@dataclass
class RuleSet:
    """All packs of a folder, merged: lexicons by name, patterns in order, the gate spec, and a hash."""

    lexicons: dict[str, Lexicon] = field(default_factory=dict)
    patterns: list[Pattern] = field(default_factory=list)
    gate: GateSpec = field(default_factory=GateSpec)
    files: list[str] = field(default_factory=list)
    sha256: str = ""


@dataclass(frozen=True)
class RuleHit:
    rule: str
    category: str
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "category": self.category, "start": self.start, "end": self.end}


def case_forms(term: str) -> set[str]:
    """The forms a case-insensitive term is matched in (lower, Capitalised, Title, UPPER), so that the
    Aho-Corasick automata never need a lower-cased copy of the text."""
    return {term, term.lower(), term[:1].upper() + term[1:], term.title(), term.upper()}


def _fail(file: str, key: str, detail: str) -> AuditError:
    return AuditError(Errors.CA301, file=file, key=key, detail=detail)


def _str_list(value: Any, file: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(file, key, "must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _parse_pack(path: str, data: Any, rs: RuleSet) -> None:
    if not isinstance(data, dict):
        raise _fail(path, "(top)", "a pack must be a mapping with `lexicons` and `patterns`")
    unknown = set(data) - {"pack", "version", "lexicons", "gate", "patterns"}
    if unknown:
        raise _fail(path, sorted(unknown)[0], "unknown key")
    lex = data.get("lexicons") or {}
    if not isinstance(lex, dict):
        raise _fail(path, "lexicons", "must be a mapping of lexicon name to {terms, cased}")
    for name, spec in lex.items():
        key = f"lexicons.{name}"
        if not isinstance(spec, dict):
            raise _fail(path, key, "must be a mapping with `terms` and/or `cased`")
        bad = set(spec) - {"terms", "cased", "description"}
        if bad:
            raise _fail(path, f"{key}.{sorted(bad)[0]}", "unknown key")
        terms = _str_list(spec.get("terms"), path, f"{key}.terms")
        cased = _str_list(spec.get("cased"), path, f"{key}.cased")
        if not terms and not cased:
            raise _fail(path, key, "lexicon has no terms")
        if name in rs.lexicons:
            old = rs.lexicons[name]
            terms, cased = old.terms + terms, old.cased + cased
        rs.lexicons[name] = Lexicon(name, tuple(dict.fromkeys(t.lower() for t in terms)), tuple(dict.fromkeys(cased)),
                                    str(spec.get("description", "")))
    gate = data.get("gate")
    if gate is not None:
        if not isinstance(gate, dict):
            raise _fail(path, "gate", "must be a mapping")
        bad = set(gate) - {"lexicons", "weighted", "max_per_term"}
        if bad:
            raise _fail(path, f"gate.{sorted(bad)[0]}", "unknown key")
        rs.gate.lexicons += _str_list(gate.get("lexicons"), path, "gate.lexicons")
        weighted = gate.get("weighted") or {}
        if not isinstance(weighted, dict):
            raise _fail(path, "gate.weighted", "must map lexicon names to weights between 0 and 1")
        for name, w in weighted.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 1:
                raise _fail(path, f"gate.weighted.{name}", "weight must be a number in (0, 1]")
            rs.gate.weighted[str(name)] = float(w)
        n = gate.get("max_per_term", rs.gate.max_per_term)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise _fail(path, "gate.max_per_term", "must be a positive integer")
        rs.gate.max_per_term = n
    patterns = data.get("patterns") or []
    if not isinstance(patterns, list):
        raise _fail(path, "patterns", "must be a list")
    for i, p in enumerate(patterns):
        key = f"patterns[{i}]"
        if not isinstance(p, dict):
            raise _fail(path, key, "must be a mapping")
        bad = set(p) - {"code", "category", "all_of", "unless", "window", "description"}
        if bad:
            raise _fail(path, f"{key}.{sorted(bad)[0]}", "unknown key")
        code = p.get("code")
        if not isinstance(code, str) or not code:
            raise _fail(path, f"{key}.code", "a pattern needs a reason code")
        if any(q.code == code for q in rs.patterns):
            raise _fail(path, f"{key}.code", f"reason code {code} is defined twice")
        if p.get("category") not in LABELS:
            raise _fail(path, f"{key}.category", f"must be one of {', '.join(LABELS)}")
        groups = p.get("all_of")
        if not isinstance(groups, list) or not groups:
            raise _fail(path, f"{key}.all_of", "must be a non-empty list of lexicon names (or lists of them)")
        parsed = tuple(tuple(g) if isinstance(g, list) else (g,) for g in groups)
        window = p.get("window", "sentence")
        if window == "sentence":
            win: int | None = None
        elif isinstance(window, int) and not isinstance(window, bool) and window > 0:
            win = window
        else:
            raise _fail(path, f"{key}.window", "must be `sentence` or a positive number of tokens")
        rs.patterns.append(Pattern(code, p["category"], parsed, _str_list(p.get("unless"), path, f"{key}.unless"),
                                   win, str(p.get("description", ""))))


def _check_references(rs: RuleSet, files: list[str]) -> None:
    where = files[-1] if files else "(no file)"
    for name in (*rs.gate.lexicons, *rs.gate.weighted):
        if name not in rs.lexicons:
            raise _fail(where, "gate", f"unknown lexicon '{name}'")
    for p in rs.patterns:
        for name in [n for g in p.all_of for n in g] + list(p.unless):
            if not isinstance(name, str) or name not in rs.lexicons:
                raise _fail(where, f"patterns.{p.code}", f"unknown lexicon '{name}'")


def load_rules(folder: str | None = None) -> RuleSet:
    """Load and validate every ``*.yml`` pack in ``folder`` (default: the bundled packs).

    >>> rs = load_rules()
    >>> "MIS_HOSTILE_ACT" in [p.code for p in rs.patterns]
    True
    """
    folder = folder or default_rules_dir()
    if os.path.isfile(folder):
        files = [folder]
    else:
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith((".yml", ".yaml")))
    if not files:
        raise AuditError(Errors.CA302, path=folder)
    rs = RuleSet()
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as fh:
            raw = fh.read()
        digest.update(os.path.basename(path).encode() + b"\0" + raw)
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise AuditError(Errors.CA303, file=path, detail=str(e).replace("\n", " ")) from e
        _parse_pack(path, data, rs)
    _check_references(rs, files)
    rs.files = files
    rs.sha256 = digest.hexdigest()
    return rs


class RuleEngine:
    """Runs a :class:`RuleSet`'s patterns over texts with spaCy (blank English, sentencizer, PhraseMatcher)."""

    SEGMENT = 100_000  # characters per spaCy call; long texts are matched segment by segment
    MAX_HITS_PER_RULE = 50
    CONTEXT = 600  # characters around an anchor term that spaCy looks at (sentence or token window)

    def __init__(self, rules: RuleSet) -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        self.rules = rules
        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("sentencizer")
        self.nlp.max_length = self.SEGMENT * 2
        self._lower = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self._orth = PhraseMatcher(self.nlp.vocab, attr="ORTH")
        for lex in rules.lexicons.values():
            if lex.terms:
                self._lower.add(lex.name, list(self.nlp.tokenizer.pipe(lex.terms)))
            if lex.cased:
                self._orth.add(lex.name, list(self.nlp.tokenizer.pipe(lex.cased)))
        self._anchors = _anchor_automaton(rules)

    def regions(self, text: str) -> list[tuple[int, int]]:
        """Spans of ``text`` where a pattern can fire: every pattern needs a term of its first group, so
        only the text around those terms (``CONTEXT`` characters, widened to line or sentence ends) is parsed."""
        spans: list[tuple[int, int]] = []
        n = len(text)
        for end, length in self._anchors.iter(text):
            start = end - length + 1
            if (start > 0 and text[start - 1].isalnum()) or (end + 1 < n and text[end + 1].isalnum()):
                continue
            lo, hi = max(0, start - self.CONTEXT), min(n, end + 1 + self.CONTEXT)
            if spans and lo <= spans[-1][1]:
                spans[-1] = (spans[-1][0], hi)
            else:
                spans.append((lo, hi))
        out = []
        for lo, hi in spans:
            if lo > 0:
                cut = max(text.rfind("\n", 0, lo), text.rfind(". ", 0, lo))
                lo = cut + 1 if cut >= 0 and lo - cut < self.CONTEXT else lo
            if hi < n:
                cuts = [c for c in (text.find("\n", hi), text.find(". ", hi)) if c >= 0]
                hi = min(cuts) + 1 if cuts and min(cuts) - hi < self.CONTEXT else hi
            if out and lo <= out[-1][1]:
                out[-1] = (out[-1][0], max(hi, out[-1][1]))
            else:
                out.append((lo, hi))
        return out

    def match(self, text: str) -> list[RuleHit]:
        """Every pattern firing in ``text``, as rule hits with character offsets, in text order."""
        hits: list[RuleHit] = []
        counts: dict[str, int] = {}
        for offset, segment in self._pieces(text):
            for h in self._match_segment(segment):
                if counts.get(h.rule, 0) < self.MAX_HITS_PER_RULE:
                    counts[h.rule] = counts.get(h.rule, 0) + 1
                    hits.append(RuleHit(h.rule, h.category, h.start + offset, h.end + offset))
        hits.sort(key=lambda h: (h.start, h.rule))
        return hits

    def _pieces(self, text: str) -> Iterable[tuple[int, str]]:
        for lo, hi in self.regions(text):
            for offset, segment in _segments(text[lo:hi], self.SEGMENT):
                yield lo + offset, segment

    def _match_segment(self, text: str) -> Iterable[RuleHit]:
        doc = self.nlp(text)
        vocab = self.nlp.vocab.strings
        # lexicon name -> list of (token start, token end)
        found: dict[str, list[tuple[int, int]]] = {}
        for matcher in (self._lower, self._orth):
            for match_id, s, e in matcher(doc):
                found.setdefault(vocab[match_id], []).append((s, e))
        if not found:
            return
        sents = [(s.start, s.end) for s in doc.sents]
        for p in self.rules.patterns:
            group_hits = [sorted(x for name in g for x in found.get(name, [])) for g in p.all_of]
            if not all(group_hits):
                continue
            blockers = sorted(x for name in p.unless for x in found.get(name, []))
            if p.window is None:
                yield from self._sentence_hits(doc, p, group_hits, blockers, sents)
            else:
                yield from self._window_hits(doc, p, group_hits, p.window)

    @staticmethod
    def _sentence_hits(doc: Any, p: Pattern, group_hits: list[list[tuple[int, int]]],
                       blockers: list[tuple[int, int]], sents: list[tuple[int, int]]) -> Iterable[RuleHit]:
        for ss, se in sents:
            if all(any(ss <= s and e <= se for s, e in g) for g in group_hits) and \
                    not any(ss <= s and e <= se for s, e in blockers):
                span = doc[ss:se]
                yield RuleHit(p.code, p.category, span.start_char, span.end_char)

    @staticmethod
    def _window_hits(doc: Any, p: Pattern, group_hits: list[list[tuple[int, int]]], window: int) -> Iterable[RuleHit]:
        anchor, others = group_hits[0], group_hits[1:]
        last_end = -1
        for s, e in anchor:
            lo, hi = s, e
            ok = True
            for g in others:
                near = [(gs, ge) for gs, ge in g if gs <= e + window and ge >= s - window]
                if not near:
                    ok = False
                    break
                gs, ge = min(near, key=lambda x: abs(x[0] - s))
                lo, hi = min(lo, gs), max(hi, ge)
            if ok and lo >= last_end:
                last_end = hi
                yield RuleHit(p.code, p.category, doc[lo].idx, doc[hi - 1].idx + len(doc[hi - 1].text))


def _anchor_automaton(rules: RuleSet) -> Any:
    """Aho-Corasick automaton of the terms of every pattern's first group (all case forms)."""
    import ahocorasick

    auto = ahocorasick.Automaton()
    names = {name for p in rules.patterns for name in p.all_of[0]}
    for name in names:
        lex = rules.lexicons[name]
        forms = {f for t in lex.terms for f in case_forms(t)} | set(lex.cased)
        for f in forms:
            auto.add_word(f, len(f))
    if not names:
        auto.add_word("\0", 1)
    auto.make_automaton()
    return auto


def _segments(text: str, size: int) -> Iterable[tuple[int, str]]:
    """Split a long text at paragraph or line breaks into pieces of at most ``size`` characters."""
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(". ", start, end))
            end = cut + 1 if cut > start else end
        yield start, text[start:end]
        start = end


def evaluate_rules(rules: RuleSet, examples: list[Any]) -> dict[str, Any]:
    """Per rule: documents it fired on, how many carry its category as gold label (precision), and the
    share of that label's documents it fired on (recall); plus the gate's pass rate and recall by label."""
    from corpus_audit.gate import Gate

    engine, gate = RuleEngine(rules), Gate(rules)
    fired: dict[str, list[str]] = {p.code: [] for p in rules.patterns}
    passed: dict[str, list[bool]] = {}
    for ex in examples:
        passed.setdefault(ex.label, []).append(gate.passes(ex.text))
        for code in {h.rule for h in engine.match(ex.text)}:
            fired[code].append(ex.label)
    support = {lab: len(v) for lab, v in passed.items()}
    out = []
    for p in rules.patterns:
        labels = fired[p.code]
        correct = sum(1 for lab in labels if lab == p.category)
        out.append({"rule": p.code, "category": p.category, "documents": len(labels), "correct": correct,
                    "precision": round(correct / len(labels), 4) if labels else 0.0,
                    "recall": round(correct / support[p.category], 4) if support.get(p.category) else 0.0})
    n = sum(support.values())
    return {"rules": out, "gate": {"pass_rate": round(sum(sum(v) for v in passed.values()) / max(1, n), 4),
                                   "recall": {lab: round(sum(v) / len(v), 4) for lab, v in sorted(passed.items())}}}
