"""Text normalisation shared by training and inference, word counts, and chunking of long documents."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

# letters and digits stay together; apostrophes inside words stay ("don't"); other symbols split off
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]", re.UNICODE)
_DIGITS = re.compile(r"\d")
_WORD_SPAN = re.compile(r"\S+")
# 2: a run of one repeated symbol is kept once (1: kept whole); models record the version they were trained with
NORMALISE_VERSION = 2
# one symbol token repeated, in the tokens joined by spaces; the same as (?<![^ ])([^\w\s])(?: \1)+(?![^ ]) there,
# as a symbol there is always a token of its own (an apostrophe inside a word has letters, not spaces, around it)
_SYMBOL_RUN = re.compile(r"([^\w\s]) \1(?: \1)*+")


def normalise(text: str) -> str:
    """The one normalisation fastText sees, at training and at inference.

    Lower-cased, tokens separated by single spaces, punctuation split off, digits mapped to 0, a run of
    one repeated symbol kept once, and no newlines (fastText treats a newline as the end of an example).
    fastText averages its input's token vectors, so a separator line of sixty dashes would otherwise
    outweigh every word of a window and decide its label alone.

    That is ``_SYMBOL_RUN.sub(r"\\1", " ".join(_TOKEN.findall(_DIGITS.sub("0", text.replace("’", "'").lower()))))``,
    the way used for mostly non-ASCII text; mostly-ASCII text is normalised faster on its UTF-8 bytes.

    >>> normalise("The AI said: \\"Don't shut me down!\\"\\nIt was 2049.")
    'the ai said : " don\\'t shut me down ! " it was 0000 .'
    >>> normalise("Signed -- Ann\\n---------\\n* * * Wait...!!")
    'signed - ann - * wait . !'
    """
    text = text.replace("’", "'")
    if text.isascii():
        return _normalise_bytes(text.encode("ascii")).decode("ascii")
    data = text.encode("utf-8", "surrogatepass")
    if len(data) - len(text) > len(text) // 4:  # much non-ASCII text (Cyrillic, CJK...): the regexes are faster
        return _SYMBOL_RUN.sub(r"\1", " ".join(_TOKEN.findall(_DIGITS.sub("0", text.lower()))))
    # the distinct non-ASCII characters: their UTF-8 forms are whole once the ASCII bytes are deleted
    others = set(data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass"))
    if any(ch.lower() != ch for ch in others):  # else lower-casing changes ASCII letters only, as _FOLD does
        text = text.lower()  # the whole text at once: a final Σ lowers to ς, İ to i and a combining dot
        data = text.encode("utf-8", "surrogatepass")
        others = set(data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass"))
    # they become what the ASCII steps expect: letters stay (bytes >= 0x80 are letters there), digits 0, spaces
    # a space, and symbols get spaces around them
    symbols = []
    for ch in others:
        if ch.isalnum() and not ch.isdecimal():
            continue
        utf8 = ch.encode("utf-8", "surrogatepass")
        if ch.isdecimal():  # what \d matches
            data = data.replace(utf8, b"0")
        elif ch.isspace():
            data = data.replace(utf8, b" ")
        else:
            data = data.replace(utf8, b" " + utf8 + b" ")
            symbols.append(utf8)
    data = _normalise_bytes(data)
    for utf8 in symbols:  # runs of one non-ASCII symbol (the ASCII ones are collapsed already)
        while utf8 + b" " + utf8 in data:
            data = data.replace(utf8 + b" " + utf8, utf8)
    return data.decode("utf-8", "surrogatepass")


def _normalise_bytes(data: bytes) -> bytes:
    """:func:`normalise` of UTF-8 text whose non-ASCII characters are lower-case letters or symbols between spaces."""
    data = data.translate(_FOLD)
    for symbol in set(data.translate(None, _NOT_SYMBOL)):  # each ASCII symbol but the apostrophe becomes a token
        data = data.replace(_BYTE[symbol], _PADDED[symbol])
    if b"'" in data:  # an apostrophe inside a word stays, others are tokens
        data = _LONE_APOSTROPHE.sub(b" ' ", data)
    return _BYTES_SYMBOL_RUN.sub(_first_group, b" ".join(data.split()))


def _first_group(match: re.Match[bytes]) -> bytes:
    return match[1]  # faster than the template r"\1", which Python 3.11 expands in Python for each match


# ASCII whitespace as str.split() and re's \s see it (Unicode: with \x1c-\x1f, which bytes.split() ignores)
_ASCII_SPACES = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_ASCII_BYTES = bytes(range(128))
_WORD_BYTES = bytes(range(ord("a"), ord("z") + 1)) + b"0" + bytes(range(128, 256))
# lower-case, digits to 0, whitespace and underscores (which split words but are not tokens) to spaces
_FOLD = bytes(b + 32 if 65 <= b <= 90 else 48 if 48 <= b <= 57 else 32 if b in _ASCII_SPACES + b"_" else b
              for b in range(256))
_NOT_SYMBOL = _WORD_BYTES + b" '"
_BYTE = [bytes([b]) for b in range(256)]
_PADDED = [b" %c " % b for b in range(256)]
_LONE_APOSTROPHE = re.compile(rb"'(?:(?<![a-z0\x80-\xff]')|(?![a-z0\x80-\xff]))")
_BYTES_SYMBOL_RUN = re.compile(rb"([^ a-z0\x80-\xff]) \1(?: \1)*+")  # as _SYMBOL_RUN, non-ASCII symbols aside


def count_words(text: str) -> int:
    """Whitespace-separated words (``len(text.split())``), the unit of ``n_words`` and of word shares in
    reports and emit.

    Counted on the UTF-8 bytes without building the list of words: the rare non-ASCII whitespace characters
    (no-break space, em space...) become spaces, then a word starts at each non-whitespace byte that follows
    whitespace or starts the text.

    >>> count_words(" one  two\\tthree\\n"), count_words("naïve café"), count_words("a\\u00a0b")
    (3, 2, 2)
    """
    return count_words_utf8(text, text.encode("utf-8", "surrogatepass"))


def count_words_utf8(text: str, data: bytes) -> int:
    """:func:`count_words` for a caller that already holds ``text`` encoded as UTF-8 (``data``)."""
    data = _ascii_spaces(text, data)
    # one bit per byte (bit 8i for byte i), set when the byte is not whitespace: big-int operations run in C
    bits = int.from_bytes(data.translate(_NOT_SPACE_BIT), "little")
    return (bits ^ (bits & (bits << 8))).bit_count()  # the set bits whose previous byte is whitespace


_NOT_SPACE_BIT = bytes(0 if b in _ASCII_SPACES else 1 for b in range(256))


def _ascii_spaces(text: str, data: bytes) -> bytes:
    """``data`` (``text`` as UTF-8) with str.split()'s non-ASCII whitespace characters turned into spaces."""
    if not text.isascii():
        for lead, spaces in _UNICODE_SPACES:  # finding a lead byte (memchr) is far faster than a regex scan
            if lead in data:
                data = spaces.sub(b" ", data)
    return data


def count_words_many(texts: Sequence[str], encoded: Sequence[bytes]) -> list[int]:
    """:func:`count_words_utf8` of each text of a batch (``encoded``: the texts as UTF-8), counted in one
    numpy pass over the batch's bytes, twice as fast as text by text on web text.

    The texts are joined by single spaces behind a leading one; a word starts at each non-whitespace byte
    that follows whitespace, and text ``k``'s words are those starting before the space that ends it.

    >>> texts = ["one two", "", " naïve\u00a0café ", "x"]
    >>> count_words_many(texts, [t.encode() for t in texts])
    [2, 0, 2, 1]
    """
    import numpy as np

    if not texts:
        return []
    parts = [_ascii_spaces(text, data) for text, data in zip(texts, encoded)]
    flags = np.frombuffer((b" " + b" ".join(parts)).translate(_NOT_SPACE_BIT), dtype=np.uint8)
    starts = np.flatnonzero(flags[1:] > flags[:-1]) + 1  # byte offsets of the words' first bytes
    ends = np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)) + 1)  # the spaces after texts
    before = np.searchsorted(starts, ends)  # words starting before each of those spaces
    return np.diff(before, prepend=0).tolist()


def _unicode_spaces() -> tuple[tuple[bytes, re.Pattern[bytes]], ...]:
    """str.split()'s non-ASCII whitespace characters (none is above U+3000) in UTF-8, a pattern per lead byte."""
    by_lead: dict[bytes, list[bytes]] = {}
    for ch in map(chr, range(0x80, 0x3001)):
        if ch.isspace():
            utf8 = ch.encode("utf-8")
            by_lead.setdefault(utf8[:1], []).append(re.escape(utf8))
    return tuple((lead, re.compile(b"|".join(forms))) for lead, forms in by_lead.items())


_UNICODE_SPACES = _unicode_spaces()


def chunk_spans(text: str, *, words: int = 200, stride: int = 150,
                around: Sequence[tuple[int, int]] | None = None, max_chunks: int = 0) -> list[tuple[int, int]]:
    """Character spans of overlapping windows of ``words`` words, ``stride`` words apart.

    A text of at most ``words`` words is one chunk covering all of it. With ``around`` (character spans of
    terms), only windows around those terms are returned: one window of ``words`` words centred on each
    term not already inside the previous window; the cost then grows with the terms, not the text.
    ``max_chunks`` (with ``around``) keeps the windows around the densest clusters of terms, at most that
    many, so the cost per document is bounded. Window edges are found by regexes that skip a number of
    words, without a list of every word's span.

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
    n = count_words(text)
    if n <= words:  # one chunk: the text without its outer whitespace
        end = len(text.rstrip())
        return [(len(text) - len(text.lstrip()), end) if end else (0, len(text))]
    out = []
    first, pos = 0, len(text) - len(text.lstrip())  # the window's first word: its index and its offset
    while first + words < n:
        if n - (first + stride) < words // 3:  # fold a short tail into a last full-width window
            out.append((pos, _through(words - 1).match(text, pos).end()))
            pos = _start_before(text, pos, len(text.rstrip()), words - 1)
            break
        if stride < words:  # the next window's first word, then this window's last word from there
            nxt = _past(stride).match(text, pos).end()
            out.append((pos, _through(words - 1 - stride).match(text, nxt).end()))
        else:
            out.append((pos, _through(words - 1).match(text, pos).end()))
            nxt = _past(stride).match(text, pos).end()
        first, pos = first + stride, nxt
    out.append((pos, len(text.rstrip())))
    return out


_LONG_WORD = 16  # characters per word (with its space) that almost no text exceeds on average
_AVG_WORD = 6  # characters per word (with its space) of English prose


@lru_cache(maxsize=64)
def _through(k: int) -> re.Pattern[str]:
    """Matches from inside a word, or just after it, to the end of the ``k``-th next word (possessive: no
    backtracking). On reversed text, to the start of the ``k``-th previous word."""
    return re.compile(rf"\S*+(?:\s++\S++){{{k}}}")


@lru_cache(maxsize=64)
def _past(k: int) -> re.Pattern[str]:
    """Matches from the start of a word to the start of the ``k``-th next word."""
    return re.compile(rf"(?:\S++\s++){{{k}}}")


def _start_before(text: str, lo: int, end: int, k: int) -> int:
    """Offset of the ``k``-th word before the word ending at ``end``, found in ``text[lo:end]`` reversed."""
    return end - _through(k).match(text[lo:end][::-1]).end()


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
    """One window of ``words`` words centred on each term, among the words of a slice of text around it."""
    out: list[tuple[int, int]] = []
    half = words // 2
    for start, end in sorted(around):
        if out and start >= out[-1][0] and end <= out[-1][1]:
            continue
        reach = (half + 1) * 8  # characters either side; widened while too few words are in reach
        while True:
            lo, hi = max(0, start - reach), min(len(text), end + reach)
            part = text[lo:hi]
            n = count_words(part)
            # a word touching an inner edge of the slice is left out, as it may be cut (even when it is not)
            cut_first = lo > 0 and n > 0 and not part[0].isspace()
            cut_last = hi < len(text) and n > cut_first and not part[-1].isspace()
            n -= cut_first + cut_last
            if n >= words or (lo == 0 and hi == len(text)) or reach > words * _LONG_WORD:
                break
            reach *= 2
        if not n:
            continue
        # the n words kept run from first_start to last_end
        first_start = hi - len(part.split(None, 1)[1]) if cut_first else hi - len(part.lstrip())
        last_end = lo + len(part.rsplit(None, 1)[0]) if cut_last else lo + len(part.rstrip())
        # the centre: the first word kept that ends after the term's start, else the last one
        centre = _WORD_SPAN.search(text, max(start, first_start), last_end)
        centre_end = centre.end() if centre else last_end
        # words from the centre's index - half, shifted to stay among the words kept
        if n < words:
            span = (first_start, last_end)
        elif not (before := _through(half).match(text[first_start:centre_end][::-1])):  # half words before it
            span = (first_start, _through(words - 1).match(text, first_start, last_end).end())
        elif not (after := _through(words - half - 1).match(text, centre_end, last_end)):  # the rest after it
            span = (_start_before(text, first_start, last_end, words - 1), last_end)
        else:
            span = (centre_end - before.end(), after.end())
        if out and span[1] <= out[-1][1]:
            continue
        out.append(span)
    return out
