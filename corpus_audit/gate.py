"""The cheap gate: one matcher pass over the raw text decides whether rules and classifier run.

A document passes when it holds a term of a strong lexicon (AI entities, named AIs, first-person
machine-narrator cues), or when the weighted lexicons (machines named only by what they are, the
furniture of machine agency: voices, locks, logs, systems) add up to ``threshold`` within a stretch of
``window`` characters: each occurrence adds its lexicon's weight, at most ``max_per_term`` occurrences of
one term count. Weak terms scattered over a long page do not add up; a passage dense with them does.
Weighted terms listed under ``common`` (words too common in web text to mean much, like "computer" or
"system") add weight only after an uncommon weighted term: alone they never pass a document.
Terms match on word boundaries (:class:`~corpus_audit.matcher.TermMatcher`).
"""

from __future__ import annotations

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
        self.threshold = spec.threshold - 1e-3  # three weights of 0.333 make 1
        strong = frozenset(spec.lexicons)
        weak = [n for n in spec.weighted if n not in strong]
        self.matcher = lexicon_matcher(rules, [*spec.lexicons, *weak])
        # common terms: they add weight only beside another weighted term (a strong lexicon keeps its terms)
        common = frozenset(spec.common) - {t for n in spec.lexicons for t in rules.lexicons[n].terms}
        # per term index of the matcher: strong or not, the weight it adds, and whether it is common
        values = self.matcher.values
        self._strong = [not strong.isdisjoint(v) for v in values]
        self._weight = [max(spec.weighted.get(n, 0.0) for n in v) for v in values]
        self._is_common = [(not cased and term in common) for term, cased in self.matcher.terms]

    def passes(self, text: str) -> bool:
        """True when ``text`` holds a strong term, or weighted terms weighing ``threshold`` within ``window``."""
        return self.anchors(text) is not None

    def anchors(self, text: str, data: bytes | None = None) -> list[tuple[int, int]] | None:
        """Where the detectors should look: ``None`` when the document does not pass, else the character
        spans of all its gate terms. ``data``: ``text`` as UTF-8, when the caller has it."""
        found = self.inspect(text, data)
        return None if found is None else found[0]

    def inspect(self, text: str, data: bytes | None = None) -> tuple[list[tuple[int, int]], bool] | None:
        """:meth:`anchors`, and whether the document names an artificial agent (holds a strong term) or
        passed on weighted machine vocabulary alone (see :func:`~corpus_audit.labels.decide`)."""
        spans = self.matcher.spans(text, data)
        if not spans:
            return None
        strong = self._strong
        named = any(strong[i] for _, _, i in spans)
        if named or self._weighted_pass(spans):
            return [(s, e) for s, e, _ in spans], named
        return None

    def _weighted_pass(self, spans: list[tuple[int, int, int]]) -> bool:
        weight, is_common, window = self._weight, self._is_common, self.window
        for n, (start, _, first) in enumerate(spans):
            if is_common[first]:
                continue  # a stretch that counts starts at an uncommon term
            total = 0.0
            seen: dict[int, int] = {}
            for pos, _, i in spans[n:]:
                if pos - start > window:
                    break
                k = seen.get(i, 0)
                if k < self.max_per_term:
                    seen[i] = k + 1
                    total += weight[i]
                    if total >= self.threshold:
                        return True
        return False
