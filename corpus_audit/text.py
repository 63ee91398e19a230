"""Text normalisation shared by training and inference, word counts, and chunking of long documents."""

from __future__ import annotations

import re
from collections.abc import Iterator

# letters and digits stay together; apostrophes inside words stay ("don't"); other symbols split off
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]", re.UNICODE)
_DIGITS = re.compile(r"\d")
_WORD_SPAN = re.compile(r"\S+")


def normalise(text: str) -> str:
    """The one normalisation fastText sees, at training and at inference.

    Lower-cased, tokens separated by single spaces, punctuation split off, digits mapped to 0, and no
    newlines (fastText treats a newline as the end of an example).

    >>> normalise("The AI said: \\"Don't shut me down!\\"\\nIt was 2049.")
    'the ai said : " don\\'t shut me down ! " it was 0000 .'
    """
    text = text.replace("’", "'")
    return " ".join(_TOKEN.findall(_DIGITS.sub("0", text.lower())))


def count_words(text: str) -> int:
    """Whitespace-separated words, the unit of ``n_words`` and of word shares in reports and emit."""
    return len(text.split())


def chunk_spans(text: str, *, words: int = 200, stride: int = 150) -> Iterator[tuple[int, int]]:
    """Character spans of overlapping windows of ``words`` words, ``stride`` words apart.

    A text of at most ``words`` words is one chunk covering all of it.

    >>> list(chunk_spans("a b c d e", words=3, stride=2))
    [(0, 5), (4, 9)]
    """
    spans = [m.span() for m in _WORD_SPAN.finditer(text)]
    if len(spans) <= words:
        yield (spans[0][0], spans[-1][1]) if spans else (0, len(text))
        return
    start = 0
    while True:
        end = min(start + words, len(spans))
        yield spans[start][0], spans[end - 1][1]
        if end == len(spans):
            return
        start += stride
        if len(spans) - start < words // 3:  # fold a short tail into a last full-width window
            start = max(0, len(spans) - words)
