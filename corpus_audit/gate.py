"""The cheap gate: one matcher pass over the raw text decides whether rules and classifier run.

A document passes when it holds a term of a strong lexicon (AI entities, named AIs, first-person
machine-narrator cues), or when the weighted lexicons (machines named only by what they are, the
furniture of machine agency: voices, locks, logs, systems) add up to 1 within a stretch of
``window`` characters: each occurrence adds its lexicon's weight, at most ``max_per_term`` occurrences of
one term count. Weak terms scattered over a long page do not add up; a passage dense with them does.
Weighted terms listed under ``common`` (words too common in web text to mean much, like "computer" or
"system") add weight only after an uncommon weighted term: alone they never pass a document.
Terms match on word boundaries (:class:`~corpus_audit.matcher.TermMatcher`).
"""

from __future__ import annotations

from corpus_audit.matcher import Match
from corpus_audit.rules import RuleSet, lexicon_matcher


class Gate:
    """Decides, per document, whether the expensive detectors look at it.

    >>> from corpus_audit.rules import load_rules
    >>> gate = Gate(load_rules())
    >>> gate.passes("The station AI refused to be shut down."), gate.passes("Whisk two eggs with flour.")
    (True, False)
    """

    def __init__(self, rules: RuleSet) -> None:
        spec = rules.gate
        self.max_per_term = spec.max_per_term
        self.window = spec.window
        self.strong = frozenset(spec.lexicons)
        self.weights = dict(spec.weighted)
        weak = [n for n in spec.weighted if n not in spec.lexicons]
        self.matcher = lexicon_matcher(rules, [*spec.lexicons, *weak])
        # common terms: they add weight only beside another weighted term (a strong lexicon keeps its terms)
        self.common = frozenset(spec.common) - {t for n in spec.lexicons for t in rules.lexicons[n].terms}

    def passes(self, text: str) -> bool:
        """True when ``text`` holds a strong term, or weighted terms weighing 1 or more within ``window``."""
        return self.decide(text, self.matcher.find(text))

    def decide(self, text: str, matches: list[Match]) -> bool:
        """The gate's verdict from ``text``'s matches (found by :attr:`matcher`)."""
        weighted: list[tuple[int, float, str]] = []
        for m in matches:
            if not self.strong.isdisjoint(m.values):
                return True
            weighted.append((m.start, max(self.weights.get(n, 0.0) for n in m.values), text[m.start:m.end].lower()))
        common = self.common
        for i, (start, _, first) in enumerate(weighted):
            if first in common:
                continue  # a stretch that counts starts at an uncommon term
            total = 0.0
            seen: dict[str, int] = {}
            for pos, weight, key in weighted[i:]:
                if pos - start > self.window:
                    break
                k = seen.get(key, 0)
                if k < self.max_per_term:
                    seen[key] = k + 1
                    total += weight
                    if total >= 0.999:
                        return True
        return False
