"""One multi-term matcher for gate, rules and features: every lexicon term occurrence on word boundaries.

Terms are matched in one pass over the text with Hyperscan (a SIMD regex engine; case-insensitive
terms use its caseless mode), or, where the ``hyperscan`` wheel is not available, with a pyahocorasick
automaton over the terms' common case forms (lower, Capitalised, Title, UPPER). A match counts only on
word boundaries: the characters either side of it must not be letters, digits or ``_``.

>>> m = TermMatcher([("AI", True, "ai_entity"), ("shut me down", False, "self_preservation")])
>>> [(h.start, h.end, h.values) for h in m.find("The AI said: Shut me down? No. PAI is a word.")]
[(4, 6, ('ai_entity',)), (13, 25, ('self_preservation',))]
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from corpus_audit.resources import cache_dir, prune_cache, touch_cached

try:  # pragma: no cover - exercised through whichever backend is installed
    import hyperscan as _hs
except ImportError:  # pragma: no cover
    _hs = None

BACKENDS = ("hyperscan", "ahocorasick")


def default_backend() -> str:
    return "hyperscan" if _hs is not None else "ahocorasick"


@dataclass(frozen=True)
class Match:
    """A term occurrence: character offsets in the text and the values the term was registered with."""

    start: int
    end: int
    values: tuple[Any, ...]


def case_forms(term: str) -> set[str]:
    """The forms a case-insensitive term is matched in by the pyahocorasick backend."""
    return {term, term.lower(), term[:1].upper() + term[1:], term.title(), term.upper()}


def _compiled(exprs: list[bytes], flags: list[int]) -> Any:
    """A Hyperscan block-mode database of ``exprs``; compiling a lexicon takes about half a second, so the
    serialised database is cached by content hash (a cache that cannot be read or written is skipped), the
    ``_KEEP_DATABASES`` most recently used."""
    h = hashlib.sha256(f"{getattr(_hs, '__version__', '')}\0{platform.machine()}".encode())
    for e, f in zip(exprs, flags):
        h.update(e + b"\0" + str(f).encode() + b"\n")
    path = os.path.join(cache_dir(), f"hs-{h.hexdigest()[:32]}.db")
    try:
        with open(path, "rb") as fh:
            db = _hs.loadb(fh.read(), mode=_hs.HS_MODE_BLOCK)
        touch_cached(path)
        return db
    except Exception:  # noqa: BLE001 - absent, unreadable or from another Hyperscan build: compile
        pass
    db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
    db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(_hs.dumpb(db))
        os.replace(tmp, path)
        prune_cache("hs-", ".db", keep=_KEEP_DATABASES)
    except OSError:
        pass
    return db


_KEEP_DATABASES = 32  # compiled databases kept in the cache (each rule set compiles one or two)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _on_boundaries(text: str, start: int, end: int) -> bool:
    return not ((start > 0 and _is_word(text[start - 1])) or (end < len(text) and _is_word(text[end])))


class TermMatcher:
    """Finds terms on word boundaries; each term carries the values of all its entries, in the order given.

    Args:
        entries: ``(term, cased, value)``: ``cased`` terms match exactly as written, the others in any case.
        backend: ``"hyperscan"`` (default when installed) or ``"ahocorasick"``.
    """

    def __init__(self, entries: Iterable[tuple[str, bool, Hashable]], *, backend: str | None = None) -> None:
        self.backend = backend or default_backend()
        if self.backend not in BACKENDS or (self.backend == "hyperscan" and _hs is None):
            raise ValueError(f"matcher backend {self.backend!r} is not available (have: {default_backend()})")
        merged: dict[tuple[str, bool], list[Hashable]] = {}
        for term, cased, value in entries:
            key = (term if cased else term.lower(), bool(cased))
            if value not in merged.setdefault(key, []):
                merged[key].append(value)
        self._keys = sorted(merged)
        self._values = [tuple(merged[k]) for k in self._keys]
        self._lengths = [len(t.encode("utf-8")) for t, _ in self._keys]
        if self.backend == "hyperscan":
            self._build_hyperscan()
        else:
            self._build_ahocorasick()

    # --- construction ---------------------------------------------------------------------------
    def _build_hyperscan(self) -> None:
        exprs, flags = [], []
        # \b where the term's edge is a word character; an edge like the dot of "a.i." is checked in Python
        self._python_check = []
        for term, cased in self._keys:
            lead = r"\b" if _is_word(term[0]) and term[0].isascii() else ""
            trail = r"\b" if _is_word(term[-1]) and term[-1].isascii() else ""
            exprs.append(f"{lead}{re.escape(term)}{trail}".encode())
            flags.append(0 if cased else _hs.HS_FLAG_CASELESS)
            self._python_check.append(not (lead and trail))
        self._db = _compiled(exprs, flags) if exprs else None
        self._scratch = _hs.Scratch(self._db) if exprs else None

    def _build_ahocorasick(self) -> None:
        import ahocorasick

        auto = ahocorasick.Automaton()
        forms: dict[str, list[int]] = {}
        for i, (term, cased) in enumerate(self._keys):
            for form in ({term} if cased else case_forms(term)):
                forms.setdefault(form, []).append(i)
        for form, ids in forms.items():
            auto.add_word(form, (len(form), tuple(ids)))
        if not forms:
            auto.add_word("\0\0", (2, ()))
        auto.make_automaton()
        self._auto = auto

    # --- matching -------------------------------------------------------------------------------
    def find(self, text: str) -> list[Match]:
        """Every term occurrence in ``text`` on word boundaries, sorted by position (then by term)."""
        values = self._values
        return [Match(s, e, values[i]) for s, e, i in self.spans(text)]

    def spans(self, text: str, data: bytes | None = None) -> list[tuple[int, int, int]]:
        """:meth:`find` without building matches: ``(start, end, term index)``, sorted by position; a term's
        index points into :attr:`terms` and :attr:`values`. ``data``: ``text`` encoded as UTF-8 (with
        ``surrogatepass``), when the caller has it."""
        found = self._spans(text, data)
        if len(found) > 1:
            found.sort()
        return found

    @property
    def terms(self) -> list[tuple[str, bool]]:
        """``(term, cased)`` per term index: caseless terms in lower case."""
        return list(self._keys)

    @property
    def values(self) -> list[tuple[Any, ...]]:
        """The values registered with each term, per term index."""
        return list(self._values)

    def _spans(self, text: str, data: bytes | None = None) -> list[tuple[int, int, int]]:
        if self.backend == "ahocorasick":
            found = []
            for end, (length, ids) in self._auto.iter(text):
                start = end - length + 1
                if _on_boundaries(text, start, end + 1):
                    found.extend((start, end + 1, i) for i in ids)
            return found
        return self._hyperscan_spans(text, data)

    def _hyperscan_spans(self, text: str, data: bytes | None = None) -> list[tuple[int, int, int]]:
        if self._scratch is None:
            return []
        raw: list[tuple[int, int]] = []
        if data is None:
            data = text.encode("utf-8", "surrogatepass")
        self._db.scan(data, match_event_handler=lambda i, _f, to, _fl, _c: raw.append((to, i)), scratch=self._scratch)
        if not raw:
            return []
        lengths, check = self._lengths, self._python_check
        if text.isascii():  # byte offsets are character offsets
            found = [(to - lengths[i], to, i) for to, i in raw]
            if not any(check[i] for _, i in raw):
                return found
            return [f for f in found if not check[f[2]] or _on_boundaries(text, f[0], f[1])]
        # map byte offsets to character offsets in one walk over the sorted offsets
        points = sorted({b for to, i in raw for b in (to - lengths[i], to)})
        char_at: dict[int, int] = {}
        pos_b = pos_c = 0
        for b in points:
            pos_c += len(data[pos_b:b].decode("utf-8", "surrogatepass"))
            pos_b = b
            char_at[b] = pos_c
        found = [(char_at[to - lengths[i]], char_at[to], i) for to, i in raw]
        # \b is ASCII-only in Hyperscan: a non-ASCII letter beside a match is checked here
        return [f for f in found if _on_boundaries(text, f[0], f[1])]
