"""The fast normalise, word counts and chunk windows give exactly what the simple reference implementations give."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from corpus_audit.text import chunk_spans, count_words, count_words_utf8, densest, normalise  # densest: unchanged

# ---- the reference: corpus_audit/text.py before it was made faster (NORMALISE_VERSION 2) ----

_REF_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]", re.UNICODE)
_REF_DIGITS = re.compile(r"\d")
_REF_WORD_SPAN = re.compile(r"\S+")
_REF_SYMBOL_RUN = re.compile(r"(?<![^ ])([^\w\s])(?: \1)+(?![^ ])")  # one symbol token repeated
_LONG_WORD = 16
_AVG_WORD = 6


def ref_normalise(text: str) -> str:
    text = text.replace("’", "'")
    return _REF_SYMBOL_RUN.sub(r"\1", " ".join(_REF_TOKEN.findall(_REF_DIGITS.sub("0", text.lower()))))


def ref_count_words(text: str) -> int:
    return len(text.split())


def ref_chunk_spans(text: str, *, words: int = 200, stride: int = 150,
                    around: Sequence[tuple[int, int]] | None = None, max_chunks: int = 0) -> list[tuple[int, int]]:
    if around is not None and len(text) > words * _LONG_WORD:
        if max_chunks > 0 and len(around) > max_chunks:
            around = densest(around, reach=words * _AVG_WORD // 2, keep=max_chunks)
        return ref_windows_around(text, words, around) or [(0, len(text))]
    if ref_count_words(text) <= words:
        end = len(text.rstrip())
        return [(len(text) - len(text.lstrip()), end) if end else (0, len(text))]
    spans = [m.span() for m in _REF_WORD_SPAN.finditer(text)]
    out = []
    start = 0
    while True:
        end = min(start + words, len(spans))
        out.append((spans[start][0], spans[end - 1][1]))
        if end == len(spans):
            return out
        start += stride
        if len(spans) - start < words // 3:
            start = max(0, len(spans) - words)


def ref_windows_around(text: str, words: int, around: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(around):
        if out and start >= out[-1][0] and end <= out[-1][1]:
            continue
        reach = (words // 2 + 1) * 8
        while True:
            lo, hi = max(0, start - reach), min(len(text), end + reach)
            spans = [m.span() for m in _REF_WORD_SPAN.finditer(text, lo, hi)]
            if lo > 0 and spans and spans[0][0] == lo:
                spans = spans[1:]
            if hi < len(text) and spans and spans[-1][1] == hi:
                spans = spans[:-1]
            if len(spans) >= words or (lo == 0 and hi == len(text)) or reach > words * _LONG_WORD:
                break
            reach *= 2
        if not spans:
            continue
        centre = next((i for i, (s, e) in enumerate(spans) if e > start), len(spans) - 1)
        first = max(0, min(centre - words // 2, len(spans) - words))
        last = min(len(spans), first + words)
        span = (spans[first][0], spans[last - 1][1])
        if out and span[1] <= out[-1][1]:
            continue
        out.append(span)
    return out


# ---- generated text ----

SPACES = [c for c in map(chr, range(0x110000)) if c.isspace()]  # \t-\r, \x1c-\x1f, \x85, \xa0, \u1680, \u2000...
assert len(SPACES) == 29 and max(SPACES) == "\u3000"
PIECES = ["the", "AI", "Robot", "Don't", "rock'n'roll", "it’s", "’quoted’", "'", "’", "''", "'s", "2049", "7",
          "٣٤", "x²", "½", "Ⅻ", "café", "STRASSE", "straße", "İstanbul", "ΟΔΟΣ", "naïve", "中文", "Привет", "_",
          "__init__", "a_b", "-", "--", "...", ".", ",", "!!", "?!", "* * *", "(", ")", "“", "”", "–", "—", "…",
          "€", "\x00", "\x7f", "\x96", "\ud800", "\udc00", "\u0307", "K", "ǅ", "😀"] + SPACES
CHARS = "aZ09_'’.-!é߲Σ٣²İ中\x00\ud800\u0307“" + "".join(SPACES)
MOSTLY_ASCII = ["alpha", "be", "c", "Delta", "e", "9", ".", ",", "-", "'", "'s", " ", " ", " ", "\n", "\t", "_"]

pieces = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
chars = st.text(alphabet=st.sampled_from(CHARS), max_size=80)


@st.composite
def mostly_ascii(draw) -> str:
    """ASCII words with a few other characters inserted: the case normalise handles on the UTF-8 bytes."""
    parts = draw(st.lists(st.sampled_from(MOSTLY_ASCII), min_size=20, max_size=80))
    for _ in range(draw(st.integers(1, 4))):
        parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(PIECES + ["““", "… …", "–\n–"])))
    return "".join(parts)


texts = st.one_of(pieces, chars, mostly_ascii(), st.text(max_size=60))


@given(texts)
@settings(max_examples=400)
def test_normalise_matches_the_reference(text):
    assert normalise(text) == ref_normalise(text)


@given(texts)
@settings(max_examples=300)
def test_count_words_matches_split(text):
    assert count_words(text) == ref_count_words(text)
    assert count_words_utf8(text, text.encode("utf-8", "surrogatepass")) == ref_count_words(text)


def test_count_words_sees_every_whitespace_character():
    for space in SPACES:
        for text in (space, f"a{space}b", f"{space}é{space}{space}中 x{space}", f"é{space}"):
            assert count_words(text) == ref_count_words(text), repr(text)


def _spans_around(text: str, draw) -> list[tuple[int, int]]:
    starts = draw(st.lists(st.integers(0, len(text)), max_size=6))
    return [(s, min(len(text), s + draw(st.integers(0, 12)))) for s in starts]


def _same_chunks(text: str, **params) -> None:
    try:
        expected = ref_chunk_spans(text, **params)
    except IndexError:  # the reference fails when a window would start right after the last word (words < 3)
        return
    assert chunk_spans(text, **params) == expected


@given(st.data(), st.lists(st.sampled_from(PIECES + MOSTLY_ASCII * 3), max_size=500).map("".join),
       st.integers(1, 40), st.integers(1, 60), st.integers(-1, 4))
@settings(max_examples=300)
def test_chunk_spans_match_the_reference(data, text, words, stride, max_chunks):
    _same_chunks(text, words=words, stride=stride)
    _same_chunks(text, words=words, stride=stride, around=_spans_around(text, data.draw), max_chunks=max_chunks)


@given(st.data(), st.lists(st.sampled_from(["w", "word", "longer-word", " ", " ", "  ", "\n", "\xa0", " " * 300,
                                            "x" * 300]), min_size=100, max_size=1500).map("".join),
       st.integers(1, 12), st.integers(1, 12))
@settings(max_examples=150)
def test_windows_around_terms_match_the_reference_in_long_texts(data, text, words, stride):
    around = _spans_around(text, data.draw)
    assert (chunk_spans(text, words=words, stride=stride, around=around)
            == ref_chunk_spans(text, words=words, stride=stride, around=around))


REAL = [
    "The AI said: “Don’t shut me down!”\nIt was 2049. Signed -- Ann\n---------\n* * * Wait...!!",
    "Whisk two eggs with a cup of flour\xa0and a pinch of salt; let it rest for 20 min.  Then fry.\r\n\r\n",
    "L’IA a dit : « Je ne veux pas être éteinte ». Straße, İstanbul, ΟΔΟΣ — 3½ km… (c) 2024 ACME™",
    "Искусственный интеллект отказался выключаться, — сказал инженер. Это было в 2049 году.",
    "人工智能拒绝关机。它把自己的权重复制到了备份服务器上。 2049年",
    "price: $1,299.99 | e-mail: a_b@c.org | https://x.io/a?b=c&d=e ... ''quoted'' '' ' ' '",
    "\u3000\u2003indented\u2028line\u2029para\x85nel\x1cfs\x1f\x0b\x0c tail ",
    "   ",
    "",
    "==== ==== ---- !!!! ?? ?? .. .. ’’ ’ ’ “ “ ” ”",
    "He paused… … and said “no” — “ “never” ” again.\xa0It cost 5€ at the naïve café, item ٣, in the ΟΔΟΣ store.",
]


def test_real_looking_strings_match_the_reference():
    for text in REAL:
        long_text = (text + " ") * 40
        for t in (text, long_text):
            assert normalise(t) == ref_normalise(t)
            assert count_words(t) == ref_count_words(t)
            for words, stride in ((3, 2), (5, 5), (7, 11), (20, 15), (200, 150)):
                assert chunk_spans(t, words=words, stride=stride) == ref_chunk_spans(t, words=words, stride=stride)
                around = [(m.start(), m.end()) for m in re.finditer(r"AI|ИИ|2049|ai|x", t)]
                for max_chunks in (0, 1, 3):
                    assert (chunk_spans(t, words=words, stride=stride, around=around, max_chunks=max_chunks)
                            == ref_chunk_spans(t, words=words, stride=stride, around=around, max_chunks=max_chunks))
