"""The cheap gate: one Aho-Corasick pass over the raw text decides whether rules and classifier run.

A document passes when it holds a term of a strong lexicon (AI entities, named AIs, first-person
machine-narrator cues), or when the weighted lexicons (machines named only by what they are, the
furniture of machine agency: voices, locks, logs, systems) add up to 1: each occurrence adds its
lexicon's weight, at most ``max_per_term`` occurrences of one term count. Terms match on word
boundaries; case-insensitive terms are compiled in their lower, Capitalised, Title and UPPER forms so
the text is never lower-cased.
"""

from __future__ import annotations

import ahocorasick

from corpus_audit.rules import RuleSet, case_forms


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
        weights: dict[str, float] = {}
        for name, w in spec.weighted.items():
            lex = rules.lexicons[name]
            for term in lex.terms:
                for v in case_forms(term):
                    weights[v] = max(weights.get(v, 0.0), w)
            for term in lex.cased:
                weights[term] = max(weights.get(term, 0.0), w)
        for name in spec.lexicons:
            lex = rules.lexicons[name]
            for term in [v for t in lex.terms for v in case_forms(t)] + list(lex.cased):
                weights[term] = 1.0
        auto = ahocorasick.Automaton()
        for term, w in weights.items():
            # the value carries the key in lower case, so the case forms of one term share a count
            auto.add_word(term, (len(term), w, term.lower()))
        auto.make_automaton()
        self._auto = auto

    def passes(self, text: str) -> bool:
        """True when the terms of ``text`` (on word boundaries) weigh 1 or more."""
        total = 0.0
        seen: dict[str, int] = {}
        n = len(text)
        for end, (length, weight, key) in self._auto.iter(text):
            start = end - length + 1
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            if end + 1 < n and (text[end + 1].isalnum() or text[end + 1] == "_"):
                continue
            if weight >= 1.0:
                return True
            k = seen.get(key, 0)
            if k < self.max_per_term:
                seen[key] = k + 1
                total += weight
                if total >= 0.999:
                    return True
        return False
