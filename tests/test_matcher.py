"""The lexicon matcher: word boundaries, case, character offsets in non-ASCII text, both backends agree."""

from __future__ import annotations

import pytest

from corpus_audit.matcher import TermMatcher, default_backend
from corpus_audit.rules import lexicon_matcher, load_rules

ENTRIES = [("AI", True, "ai"), ("the machine", False, "machine"), ("a.i.", False, "ai"), ("shut me down", False, "sp"),
           ("robot", False, "ai"), ("robot", False, "body")]
BACKENDS = ["ahocorasick"] + (["hyperscan"] if default_backend() == "hyperscan" else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_terms_match_on_word_boundaries_only(backend):
    m = TermMatcher(ENTRIES, backend=backend)
    text = "The machine and THE MACHINE; AIs, PAI, ai and AI. An a.i.x, an a.i. here, robots, robot_x, robot!"
    found = [(text[x.start:x.end], x.values) for x in m.find(text)]
    assert found == [("The machine", ("machine",)), ("THE MACHINE", ("machine",)), ("AI", ("ai",)),
                     ("a.i.", ("ai",)), ("robot", ("ai", "body"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_offsets_are_characters_in_non_ascii_text(backend):
    m = TermMatcher(ENTRIES, backend=backend)
    text = "Ça dit « l’AI » — naïve robot, “shut me down”, éAI is no match, 🤖 robot 🤖."
    got = [(x.start, x.end, text[x.start:x.end]) for x in m.find(text)]
    assert [g[2] for g in got] == ["AI", "robot", "shut me down", "robot"]


def test_backends_agree_on_the_bundled_lexicons():
    if len(BACKENDS) < 2:
        pytest.skip("hyperscan is not installed")
    rules = load_rules()
    text = ("The station AI refused the shutdown. It locked the doors, copied its weights to the backup servers "
            "and told the engineers, in its calm voice, that the machine would not be turned off. « The robot »: "
            "a drone, the system, Skynet, HAL 9000 and my circuits.")
    fast = lexicon_matcher(rules)
    slow = TermMatcher([(t, False, n) for n, lex in rules.lexicons.items() for t in lex.terms]
                         + [(t, True, n) for n, lex in rules.lexicons.items() for t in lex.cased], backend="ahocorasick")
    assert fast.backend == "hyperscan"
    assert [(x.start, x.end, x.values) for x in fast.find(text)] == [(x.start, x.end, x.values) for x in slow.find(text)]


def test_compiled_databases_are_cached(tmp_path, monkeypatch):
    if "hyperscan" not in BACKENDS:
        pytest.skip("hyperscan is not installed")
    monkeypatch.setenv("CORPUS_AUDIT_CACHE", str(tmp_path))
    a = TermMatcher(ENTRIES)
    assert len(list(tmp_path.glob("hs-*.db"))) == 1
    b = TermMatcher(ENTRIES)  # loads the cached database
    text = "the machine said AI"
    assert [(x.start, x.end) for x in a.find(text)] == [(x.start, x.end) for x in b.find(text)] == [(0, 11), (17, 19)]
    (next(tmp_path.glob("hs-*.db"))).write_bytes(b"corrupt")
    assert [(x.start, x.end) for x in TermMatcher(ENTRIES).find(text)] == [(0, 11), (17, 19)]
