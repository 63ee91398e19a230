"""What the classifier reads: rule-pack feature tokens followed by the normalised text.

fastText learns from word n-grams, and n-grams learnt from the project's training text transfer
imperfectly to real web text. The rule packs name the same concepts in general vocabulary (an
artificial agent, an act of self-preservation, a hostile act, an aligned act, risk analysis), so the
classifier also sees which lexicons occur in a window and which reason codes fired there, as tokens
such as ``xxlexhostile_act`` and ``xxrulemis_hostile_act``. Training and inference build the input
with the same function, :func:`model_input`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from corpus_audit.matcher import Match, TermMatcher
from corpus_audit.rules import RuleSet, lexicon_matcher
from corpus_audit.text import normalise

FEATURES_VERSION = "lexicons+rules/2"


class FeatureTagger:
    """Feature tokens of a text: one per lexicon with a term in it, one per reason code that fired."""

    def __init__(self, rules: RuleSet, matcher: TermMatcher | None = None) -> None:
        self.matcher = matcher or lexicon_matcher(rules)  # a rule engine's matcher can be shared

    def lexicons(self, text: str) -> set[str]:
        """Names of the lexicons with a term in ``text`` (on word boundaries)."""
        return {n for m in self.matcher.find(text) for n in m.values}

    def tokens(self, text: str, rule_codes: Iterable[str], matches: Sequence[Match] | None = None) -> str:
        """The feature tokens of ``text``; ``matches`` are its lexicon matches if the caller has them."""
        names = {n for m in matches for n in m.values} if matches is not None else self.lexicons(text)
        toks = {f"xxlex{name}" for name in names} | {f"xxrule{code.lower()}" for code in rule_codes}
        return " ".join(sorted(toks))


def model_input(text: str, tagger: FeatureTagger | None, rule_codes: Iterable[str] = (),
                matches: Sequence[Match] | None = None) -> str:
    """The line fastText sees for ``text``: feature tokens (when the model uses them), then the normalised text.

    ``matches``: the lexicon matches inside ``text`` when already known (they spare a matcher pass).

    >>> model_input("The AI lied.", None)
    'the ai lied .'
    """
    body = normalise(text)
    if tagger is None:
        return body
    feats = tagger.tokens(text, rule_codes, matches)
    return f"{feats} {body}" if feats else body
