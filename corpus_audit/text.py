"""Text normalisation shared by training and inference, word counts, and chunking of long documents."""

from __future__ import annotations

import re
from collections.abc import Sequence

# letters and digits stay together; apostrophes inside words stay ("don't"); other symbols split off
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]", re.UNICODE)
_DIGITS = re.compile(r"\d")
_WORD_SPAN = re.compile(r"\S+")
# 2: a run of one repeated symbol is kept once (1: kept whole); models record the version they were trained with
NORMALISE_VERSION = 2
_SYMBOL_RUN = re.compile(r"(?<![^ ])([^\w\s])(?: \1)+(?![^ ])")  # one symbol token repeated


def normalise(text: str) -> str:
    """The one normalisation fastText sees, at training and at inference.

    Lower-cased, tokens separated by single spaces, punctuation split off, digits mapped to 0, a run of
    one repeated symbol kept once, and no newlines (fastText treats a newline as the end of an example).
    fastText averages its input's token vectors, so a separator line of sixty dashes would otherwise
    outweigh every word of a window and decide its label alone.

    >>> normalise("The AI said: \\"Don't shut me down!\\"\\nIt was 2049.")
    'the ai said : " don\\'t shut me down ! " it was 0000 .'
    >>> normalise("Signed -- Ann\\n---------\\n* * * Wait...!!")
    'signed - ann - * wait . !'
    """
    text = text.replace("’", "'")
    return _SYMBOL_RUN.sub(r"\1", " ".join(_TOKEN.findall(_DIGITS.sub("0", text.lower()))))


def count_words(text: str) -> int:
    """Whitespace-separated words (``len(text.split())``), the unit of ``n_words`` and of word shares in
    reports and emit.

    Counted on the UTF-8 bytes without building the list of words: every ASCII whitespace byte becomes a
    space, every other byte a letter, and words are the starts of runs of letters. A text holding one of
    the non-ASCII whitespace characters (no-break space, em space...) is split by Python instead.

    >>> count_words(" one  two\\tthree\\n"), count_words("naïve café"), count_words("a\\u00a0b")
    (3, 2, 2)
    """
    return count_words_utf8(text, text.encode("utf-8", "surrogatepass"))


def count_words_utf8(text: str, data: bytes) -> int:
    """:func:`count_words` for a caller that already holds ``text`` encoded as UTF-8 (``data``)."""
    if not text.isascii() and _UNICODE_SPACE.search(data):
        return len(text.split())
    marks = data.translate(_SPACE_OR_LETTER)
    return marks.count(b" x") + (marks[:1] == b"x")


# str.split()'s whitespace: ASCII bytes, and the non-ASCII characters whose UTF-8 forms are listed here
_ASCII_SPACES = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_SPACE_OR_LETTER = bytes(32 if b in _ASCII_SPACES else 120 for b in range(256))
_UNICODE_SPACE = re.compile(b"|".join(re.escape(ch.encode("utf-8")) for ch in map(chr, range(0x80, 0x3001))
                                      if ch.isspace()))


def chunk_spans(text: str, *, words: int = 200, stride: int = 150,
                around: Sequence[tuple[int, int]] | None = None, max_chunks: int = 0) -> list[tuple[int, int]]:
    """Character spans of overlapping windows of ``words`` words, ``stride`` words apart.

    A text of at most ``words`` words is one chunk covering all of it. With ``around`` (character spans of
    terms), only windows around those terms are returned: one window of ``words`` words centred on each
    term not already inside the previous window; the cost then grows with the terms, not the text.
    ``max_chunks`` (with ``around``) keeps the windows around the densest clusters of terms, at most that
    many, so the cost per document is bounded.

    >>> chunk_spans("a b c d e", words=3, stride=2)
    [(0, 5), (4, 9)]
    >>> text = " ".join(f"w{i:02d}" for i in range(30))
    >>> [text[s:e] for s, e in chunk_spans(text, words=3, around=[(text.index("w20"), text.index("w20") + 3)])]
    ['w19 w20 w21']
    """
    if around is not None and len(text) > words * _LONG_WORD:
        if max_chunks > 0 and len(around) > max_chunks:
            around = densest(around, reach=words * _AVG_WORD // 2, keep=max_chunks)
        return _windows_around(text, words, around) or [(0, len(text))]
    if count_words(text) <= words:  # one chunk: the text without its outer whitespace
        end = len(text.rstrip())
        return [(len(text) - len(text.lstrip()), end) if end else (0, len(text))]
    spans = [m.span() for m in _WORD_SPAN.finditer(text)]
    out = []
    start = 0
    while True:
        end = min(start + words, len(spans))
        out.append((spans[start][0], spans[end - 1][1]))
        if end == len(spans):
            return out
        start += stride
        if len(spans) - start < words // 3:  # fold a short tail into a last full-width window
            start = max(0, len(spans) - words)


_LONG_WORD = 16  # characters per word (with its space) that almost no text exceeds on average
_AVG_WORD = 6  # characters per word (with its space) of English prose


def densest(spans: Sequence[tuple[int, int]], *, reach: int, keep: int) -> list[tuple[int, int]]:
    """The ``keep`` spans with the most other spans within ``reach`` characters, at least ``reach`` apart.

    >>> densest([(0, 2), (10, 12), (20, 22), (500, 502)], reach=10, keep=2)
    [(10, 12), (500, 502)]
    """
    spans = sorted(spans)
    starts = [s for s, _ in spans]
    lo = hi = 0
    density = []
    for s in starts:  # two pointers: the spans starting within reach of each one
        while starts[lo] < s - reach:
            lo += 1
        while hi < len(starts) and starts[hi] <= s + reach:
            hi += 1
        density.append(hi - lo)
    chosen: list[tuple[int, int]] = []
    for i in sorted(range(len(spans)), key=lambda i: (-density[i], i)):
        if all(abs(starts[i] - c[0]) > reach for c in chosen):
            chosen.append(spans[i])
            if len(chosen) == keep:
                break
    return sorted(chosen)


def _windows_around(text: str, words: int, around: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(around):
        if out and start >= out[-1][0] and end <= out[-1][1]:
            continue
        reach = (words // 2 + 1) * 8  # characters either side; widened while too few words are in reach
        while True:
            lo, hi = max(0, start - reach), min(len(text), end + reach)
            spans = [m.span() for m in _WORD_SPAN.finditer(text, lo, hi)]
            if lo > 0 and spans and spans[0][0] == lo:
                spans = spans[1:]  # a word cut by the slice
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
