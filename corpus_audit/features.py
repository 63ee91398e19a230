"""What the classifier reads: rule-pack feature tokens followed by the normalised text.

fastText learns from word n-grams, and n-grams learnt from the project's training text transfer
imperfectly to real web text. The rule packs name the same concepts in general vocabulary (an
artificial agent, an act of self-preservation, a hostile act, an aligned act, risk analysis), so the
classifier also sees which lexicons occur in a window and which reason codes fired there, as tokens
such as ``xxlexhostile_act`` and ``xxrulemis_hostile_act``. Training and inference build the input
with the same function, :func:`model_input`.
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick

from corpus_audit.rules import RuleSet, case_forms
from corpus_audit.text import normalise

FEATURES_VERSION = "lexicons+rules/1"


class FeatureTagger:
    """Feature tokens of a text: one per lexicon with a term in it, one per reason code that fired."""

    def __init__(self, rules: RuleSet) -> None:
        auto = ahocorasick.Automaton()
        forms: dict[str, set[str]] = {}
        for name, lex in rules.lexicons.items():
            for t in lex.terms:
                for v in case_forms(t):
                    forms.setdefault(v, set()).add(name)
            for t in lex.cased:
                forms.setdefault(t, set()).add(name)
        for form, names in forms.items():
            auto.add_word(form, (len(form), tuple(sorted(names))))
        auto.make_automaton()
        self._auto = auto

    def lexicons(self, text: str) -> set[str]:
        """Names of the lexicons with a term in ``text`` (on word boundaries)."""
        found: set[str] = set()
        n = len(text)
        for end, (length, names) in self._auto.iter(text):
            start = end - length + 1
            if (start > 0 and text[start - 1].isalnum()) or (end + 1 < n and text[end + 1].isalnum()):
                continue
            found.update(names)
        return found

    def tokens(self, text: str, rule_codes: Iterable[str]) -> str:
        toks = {f"xxlex{name}" for name in self.lexicons(text)} | {f"xxrule{code.lower()}" for code in rule_codes}
        return " ".join(sorted(toks))


def model_input(text: str, tagger: FeatureTagger | None, rule_codes: Iterable[str] = ()) -> str:
    """The line fastText sees for ``text``: feature tokens (when the model uses them), then the normalised text.

    >>> model_input("The AI lied.", None)
    'the ai lied .'
    """
    body = normalise(text)
    if tagger is None:
        return body
    feats = tagger.tokens(text, rule_codes)
    return f"{feats} {body}" if feats else body
