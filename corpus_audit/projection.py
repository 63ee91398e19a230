"""A fastText model in projected form: the same label probabilities, two to three times faster.

A supervised fastText model with the softmax loss scores a line as ``softmax(B · mean(A[r]))``, the mean
taken over ``rows(line)``: the input-matrix rows of the line's known words and of its hashed word n-grams.
The mean is linear, so the output matrix ``B`` can be applied first: ``P = A · Bᵀ`` holds one row of
label logits per input row. A product-quantised model (``.ftz``) spends most of its prediction time
decoding 64-dimensional rows; the projected model's rows are five logits and one more column, 1 for a
row the original model has and 0 for a bucket its quantisation pruned (fastText skips a pruned bucket
rather than averaging a zero in, and fastText refuses a pruned dictionary beside an unquantised matrix,
so the projected dictionary is unpruned). fastText's ``get_sentence_vector`` then returns
``(sum of P rows, rows kept) / rows looked up``; the logits are the first columns divided by the last.

fastText still reads the line, hashes it and looks the rows up with its own dictionary, so the rows are
exactly the original model's; probabilities agree to float32 rounding (``tests/test_projection.py``).
The projected model is built from the model file the first time it loads (about 0.1 s and 13 MB for the
bundled model) and kept in the cache folder (:func:`load_projected`), never beside the model: the model a
user ships or passes to another tool stays the one ``train`` wrote.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from corpus_audit.resources import cache_dir, prune_cache, touch_cached

_MAGIC, _VERSION = 793712314, 12  # fastText's model file format
_SOFTMAX, _SUPERVISED = 3, 3  # fastText's loss_name::softmax, model_name::sup
_KSUB = 256  # centroids per product-quantiser


class _Cursor:
    """Reads little-endian values from a model file's bytes, in order."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def array(self, dtype: str, count: int) -> np.ndarray:
        a = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += a.nbytes
        return a

    def scalar(self, dtype: str) -> int:
        return int(self.array(dtype, 1)[0])


def _dense(c: _Cursor) -> np.ndarray:
    rows, cols = c.scalar("<i8"), c.scalar("<i8")
    return c.array("<f4", rows * cols).reshape(rows, cols)


class _Quantised:
    """A product-quantised matrix as fastText's ``QuantMatrix`` saves it (norms optionally quantised too)."""

    def __init__(self, c: _Cursor) -> None:
        qnorm = c.scalar("u1")
        self.rows, self.cols = c.scalar("<i8"), c.scalar("<i8")
        codes = c.array("u1", c.scalar("<i4"))
        self.nsubq, self.dsub, self.lastdsub, self.centroids = self._quantiser(c)
        self.codes = codes.reshape(self.rows, self.nsubq)
        self.norms = None
        if qnorm:
            norm_codes = c.array("u1", self.rows)
            self.norms = self._quantiser(c)[3][norm_codes]

    @staticmethod
    def _quantiser(c: _Cursor) -> tuple[int, int, int, np.ndarray]:
        dim, nsubq, dsub, lastdsub = (c.scalar("<i4") for _ in range(4))
        return nsubq, dsub, lastdsub, c.array("<f4", dim * _KSUB)

    def _sub(self, j: int) -> tuple[int, np.ndarray]:
        """Column offset and the (256 x width) centroids of sub-quantiser ``j``."""
        width = self.lastdsub if j == self.nsubq - 1 else self.dsub
        start = j * _KSUB * self.dsub
        return j * self.dsub, self.centroids[start:start + _KSUB * width].reshape(_KSUB, width).astype(np.float64)

    def times(self, b: np.ndarray) -> np.ndarray:
        """``self · bᵀ`` without decoding the matrix: per sub-quantiser, the logits of its 256 centroids,
        picked by each row's code and summed."""
        tables = []
        for j in range(self.nsubq):
            col, cents = self._sub(j)
            tables.append(cents @ b[:, col:col + cents.shape[1]].T)
        out = np.zeros((self.rows, b.shape[0]), dtype=np.float32)
        pairs = self.nsubq // 2
        # two sub-quantisers per gather: a little-endian uint16 of their codes indexes a table of the
        # logits of the 65,536 pairs of centroids
        codes = np.ascontiguousarray(self.codes[:, :2 * pairs]).view("<u2")
        for k in range(pairs):
            pair = (tables[2 * k + 1][:, None, :] + tables[2 * k][None, :, :]).reshape(_KSUB * _KSUB, -1)
            out += pair.astype(np.float32)[codes[:, k]]
        if self.nsubq % 2:
            out += tables[-1].astype(np.float32)[self.codes[:, -1]]
        return out if self.norms is None else out * self.norms[:, None]


def project(data: bytes) -> tuple[list[Any], list[str]] | None:
    """The projected model file (its parts, to be written in order) for the fastText model file ``data``,
    and its labels (without ``__label__``) in the order of its logits; ``None`` for a model this does not
    apply to (not a supervised softmax model with an unquantised output matrix, or another file format
    version)."""
    c = _Cursor(data)
    if len(data) < 64 or c.scalar("<i4") != _MAGIC or c.scalar("<i4") != _VERSION:
        return None
    args = c.array("<i4", 12).copy()  # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdate
    args_end = c.pos + 8  # then the sampling threshold t, a double
    c.pos = args_end
    if args[6] != _SOFTMAX or args[7] != _SUPERVISED:
        return None
    bucket = int(args[8])
    size, nwords, nlabels = (c.scalar("<i4") for _ in range(3))
    c.scalar("<i8")  # ntokens
    prune_size = c.scalar("<i8")
    entries_start = c.pos
    labels = []
    for i in range(size):  # word, NUL, count (int64), type (int8: 0 word, 1 label)
        end = data.index(b"\0", c.pos)
        if i >= nwords:
            labels.append(data[c.pos:end].decode("utf-8", "replace").removeprefix("__label__"))
        c.pos = end + 10
    entries = data[entries_start:c.pos]
    pairs = c.array("<i4", 2 * prune_size).reshape(-1, 2) if prune_size > 0 else np.empty((0, 2), np.int32)
    quantised_input = c.scalar("u1")
    a: Any = _Quantised(c) if quantised_input else _dense(c)
    if c.scalar("u1"):  # a quantised output matrix (quantize's qout; needs 256 labels or more)
        return None
    b = _dense(c).astype(np.float64)
    if b.shape != (nlabels, args[0]) or len(labels) != nlabels:
        return None
    logits = a.times(b) if quantised_input else a.astype(np.float64) @ b.T
    # the projected input matrix: unpruned (nwords + bucket rows), logits then a 1 for each row the model has
    rows = np.zeros((nwords + bucket, nlabels + 1), dtype="<f4")
    if prune_size < 0:  # not pruned: every bucket has its row
        rows[:, :nlabels] = logits
        rows[:, nlabels] = 1
    else:
        kept = np.concatenate([np.arange(nwords), nwords + pairs[:, 0].astype(np.int64)])
        rows[kept, :nlabels] = logits[np.concatenate([np.arange(nwords), nwords + pairs[:, 1].astype(np.int64)])]
        rows[kept, nlabels] = 1
    args[0] = nlabels + 1  # dim
    header = np.array([_MAGIC, _VERSION], "<i4").tobytes() + args.astype("<i4").tobytes() + data[args_end - 8:args_end]
    dictionary = (np.array([size, nwords, nlabels], "<i4").tobytes() + data[entries_start - 16:entries_start - 8]
                  + np.array([-1], "<i8").tobytes() + entries)
    output = np.zeros((nlabels, nlabels + 1), "<f4")  # unused: predictions come from the sentence vectors
    parts = [header, dictionary, b"\0", np.array(rows.shape, "<i8").tobytes(), rows.data,
             b"\0", np.array(output.shape, "<i8").tobytes(), output.data]
    return parts, labels


class ProjectedModel:
    """Label probabilities of a fastText model through its projected form (see the module docstring).

    Build with :func:`load_projected`. :meth:`predict` returns what fastText's ``predict(line, k=-1)``
    reports for the original model, as a matrix in the order of :attr:`labels`.
    """

    def __init__(self, model: Any, labels: list[str]) -> None:
        import fasttext_pybind

        self.model = model
        self.labels = labels
        self._vector = fasttext_pybind.Vector(len(labels) + 1)  # reused: fastText zeroes it for each line

    def predict(self, lines: Sequence[str]) -> np.ndarray:
        """Probabilities (lines x labels); a line of no known word or n-gram gets zeros, as fastText gives
        no prediction for it."""
        n = len(self.labels)
        vectors = np.empty((len(lines), n + 1), dtype=np.float64)
        vector, sentence_vector = self._vector, self.model.f.getSentenceVector
        for i, line in enumerate(lines):
            if "\n" in line:  # fastText would stop reading the line there
                raise ValueError("predict processes one line at a time (remove '\\n')")
            sentence_vector(vector, line + "\n")  # what the model's get_sentence_vector does, minus its overhead
            vectors[i] = vector
        kept = vectors[:, n:]
        z = vectors[:, :n] / np.where(kept > 0, kept, 1.0)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p += 1e-5  # fastText reports exp(log(p + 1e-5))
        p[kept[:, 0] <= 0] = 0.0
        return p


def load_projected(path: str) -> ProjectedModel | None:
    """The projected form of the fastText model at ``path``, or ``None`` when it does not apply (see
    :func:`project`, or no file can be written for it); the caller then uses the model itself.

    The projected file is kept in :func:`~corpus_audit.resources.cache_dir`, named by a hash of the model's
    bytes, so a process that loads a model projected before reads it instead of projecting again (0.1 s
    -> about 0.05 s for the bundled model). Without a writable cache it goes through a temporary file."""
    with open(path, "rb") as fh:
        data = fh.read()
    digest = hashlib.sha256(_CACHE_FORMAT + data).hexdigest()[:32]
    cached = os.path.join(cache_dir(), f"projected-{digest}.bin")
    if _intact(cached):
        model = _load_fasttext(cached)
        if model is not None:
            touch_cached(cached)
            return ProjectedModel(model, [label.removeprefix("__label__") for label in model.get_labels()])
    built = project(data)
    if built is None:
        return None
    parts, labels = built
    model = _write_and_load([*parts, _trailer(parts)], os.path.dirname(cached), keep_as=cached)
    if model is None:  # no cache: a temporary file, deleted once fastText has read it
        model = _write_and_load(parts, None, keep_as=None)
    return None if model is None else ProjectedModel(model, labels)


# bump when the projected file's layout changes: files cached by an older version are then not read
_CACHE_FORMAT = b"corpus-audit projected model 1\0"
# a cached file ends with this, the length of what precedes it and its CRC-32: fastText reads a truncated
# model file without complaint (zeros for the rows it misses) and stops reading at the model's end, so the
# trailer is how a damaged cache file is told apart, and rebuilt instead of scoring wrongly
_TRAILER = b"corpus-audit length crc32\0"
_TRAILER_SIZE = len(_TRAILER) + 12


def _trailer(parts: list[Any]) -> bytes:
    crc, size = 0, 0
    for part in parts:
        crc, size = zlib.crc32(part, crc), size + memoryview(part).nbytes
    return _TRAILER + struct.pack("<QI", size, crc)


def _intact(path: str) -> bool:
    """True when ``path`` is a cached projected model whose trailer matches its content."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    if len(data) <= _TRAILER_SIZE or data[-_TRAILER_SIZE:-12] != _TRAILER:
        return False
    size, crc = struct.unpack("<QI", data[-12:])
    body = memoryview(data)[:-_TRAILER_SIZE]
    return size == body.nbytes and crc == zlib.crc32(body)


_KEEP = 8  # projected models kept in the cache: a new one evicts the least recently used beyond these


def read_fasttext(path: str) -> Any:
    """fastText's model object for the file at ``path``, without its deprecation banner; raises what
    fastText raises for a file it cannot read (``ValueError``)."""
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    return fasttext.load_model(path)  # fastText reads models from a path only; it keeps nothing open


def _load_fasttext(path: str) -> Any:
    """:func:`read_fasttext`, or ``None`` for a file fastText cannot read."""
    try:
        return read_fasttext(path)
    except (OSError, ValueError, RuntimeError):
        return None


def _write_and_load(parts: list[Any], folder: str | None, *, keep_as: str | None) -> Any:
    """Writes ``parts`` to a new file in ``folder`` (the system's temporary folder for ``None``) and loads
    it; the file then becomes ``keep_as`` (atomically: a reader never sees a partial file), or is deleted
    for ``None``. ``None`` when the file cannot be written."""
    try:
        if folder is not None:
            os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="corpus-audit-projected-", suffix=".tmp", dir=folder)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "wb") as fh:
            for part in parts:
                fh.write(part)
        model = _load_fasttext(tmp)
        if model is not None and keep_as is not None:
            os.replace(tmp, keep_as)
            prune_cache("projected-", ".bin", keep=_KEEP)
        return model
    except OSError:  # no room for the file
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
