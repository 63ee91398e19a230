"""The cheap gate: one Aho-Corasick pass over the raw text decides whether rules and classifier run.

A document passes when it holds a term of a strong lexicon (AI entities, named AIs, first-person
machine-narrator cues) or at least ``min_weak_hits`` terms of the weak lexicons (machines named only
by what they are). Terms match on word boundaries; case-insensitive terms are compiled in their
lower, Capitalised, Title and UPPER forms so the text is never lower-cased.
"""

from __future__ import annotations

import ahocorasick

from corpus_audit.rules import RuleSet

_STRONG, _WEAK = 1, 0


def _variants(term: str) -> set[str]:
    return {term, term.lower(), term[:1].upper() + term[1:], term.title(), term.upper()}


class Gate:
    """Decides, per document, whether the expensive detectors look at it.

    >>> from corpus_audit.rules import load_rules
    >>> gate = Gate(load_rules())
    >>> gate.passes("The station AI refused to be shut down."), gate.passes("Whisk two eggs with flour.")
    (True, False)
    """

    def __init__(self, rules: RuleSet) -> None:
        spec = rules.gate
        self.min_weak_hits = spec.min_weak_hits
        auto = ahocorasick.Automaton()
        entries: dict[str, int] = {}
        for strength, names in ((_WEAK, spec.weak_lexicons), (_STRONG, spec.lexicons)):
            for name in names:
                lex = rules.lexicons[name]
                for term in lex.terms:
                    for v in _variants(term):
                        entries[v] = max(entries.get(v, 0), strength)
                for term in lex.cased:
                    entries[term] = max(entries.get(term, 0), strength)
        for term, strength in entries.items():
            auto.add_word(term, (len(term), strength))
        auto.make_automaton()
        self._auto = auto

    def passes(self, text: str) -> bool:
        """True when ``text`` holds a strong term, or ``min_weak_hits`` weak ones, on word boundaries."""
        weak = 0
        n = len(text)
        for end, (length, strength) in self._auto.iter(text):
            start = end - length + 1
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            if end + 1 < n and (text[end + 1].isalnum() or text[end + 1] == "_"):
                continue
            if strength == _STRONG:
                return True
            weak += 1
            if weak >= self.min_weak_hits:
                return True
        return False
