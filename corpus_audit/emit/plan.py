"""The emit plan: what the policy does to every input file, and where each upsampled copy goes, from annotations alone.

Planning reads the scan's annotation rows (not the documents) and the positive corpora's word counts, so it
is cheap and global: it knows the kept words of the whole output before anything is written, which fixes
how many positive copies reach ``target_share`` of output words. The writing tasks then follow the plan
file by file. Memory holds one tally per input file and one small entry per positive document.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from corpus_audit.emit.policy import Policy, PolicyTally, UpsampleSource, decide, realise, unit_hash
from corpus_audit.emit.records import CountingLedger, RecordReader
from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import SCORE_COLUMNS
from corpus_audit.readers import FORMATS, InputFile, discover_inputs
from corpus_audit.text import count_words

ANNOTATION_COLUMNS = ["id", "file", "row", "n_words", "label", *SCORE_COLUMNS]


# --- the scan's annotations ----------------------------------------------------------------


@dataclass
class ScanInfo:
    """A finished scan: its annotation files, ``scan.json`` and the reader options it used."""

    path: str
    files: list[str]
    record: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.record.get("config") or {})

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.record, sort_keys=True).encode())
        for f in self.files:
            h.update(f"{os.path.basename(f)}:{os.path.getsize(f)}".encode())
        return h.hexdigest()


def read_scan(path: str) -> ScanInfo:
    """Find the annotations and ``scan.json`` a scan wrote to ``path`` (CA703, CA708 when unusable)."""
    import pyarrow.parquet as pq

    record_path = os.path.join(path, "scan.json")
    if not os.path.isfile(record_path):
        raise AuditError(Errors.CA703, path=path, detail="no scan.json: the scan did not finish")
    try:
        with open(record_path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError) as e:
        raise AuditError(Errors.CA703, path=path, detail=f"scan.json unreadable: {e}") from e
    files = sorted(glob.glob(os.path.join(path, "annotations", "*.parquet")))
    if not files:
        raise AuditError(Errors.CA703, path=path, detail="no annotations/*.parquet")
    names = set(pq.read_schema(files[0]).names)
    missing = [c for c in ANNOTATION_COLUMNS if c not in names]
    if missing:
        raise AuditError(Errors.CA703, path=path, detail=f"{files[0]} lacks columns {', '.join(missing)}")
    limit = (record.get("config") or {}).get("limit", -1)
    if limit not in (-1, None):
        raise AuditError(Errors.CA708, path=path, limit=limit)
    return ScanInfo(path, files, record)


# Annotation files are read with ParquetFile, not pyarrow.dataset: a dataset scanner's background threads
# can outlive the scan and abort the interpreter at exit ("terminate called without an active exception",
# apache/arrow#34314, #45214).


def iter_annotations(files: list[str], *, batch_size: int = 65536) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(annotation file index, row)`` for every annotation row of ``files`` (the columns emit needs), streamed."""
    import pyarrow.parquet as pq

    for i, path in enumerate(files):
        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=batch_size, columns=ANNOTATION_COLUMNS):
                for row in batch.to_pylist():
                    yield i, row


def file_annotations(files: list[str], file: str, *, batch_size: int = 4096) -> Iterator[dict[str, Any]]:
    """The annotation rows of input ``file`` in row order, from the annotation ``files`` that hold it.

    Row groups whose ``file`` statistics exclude ``file`` are skipped; the matching rows are held as one
    columnar table (compact) and handed out as Python rows one batch at a time.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = []
    for path in files:
        with pq.ParquetFile(path) as pf:
            meta = pf.metadata
            col = next(i for i in range(meta.num_columns) if meta.schema.column(i).path == "file")
            for rg in range(meta.num_row_groups):
                stats = meta.row_group(rg).column(col).statistics
                if stats is not None and stats.has_min_max and not stats.min <= file <= stats.max:
                    continue
                t = pf.read_row_group(rg, columns=ANNOTATION_COLUMNS)
                t = t.filter(pc.equal(t["file"], file))
                if t.num_rows:
                    tables.append(t)
    if not tables:
        return
    for batch in pa.concat_tables(tables).sort_by("row").to_batches(max_chunksize=batch_size):
        yield from batch.to_pylist()


# --- per-file tallies ------------------------------------------------------------------------


@dataclass
class FileTally:
    """What the policy does to one input file, counted from its annotation rows.

    ``records`` counts output records from kept documents (with repeats in sample mode); ``words`` their
    words, tags included (in weight mode: weighted by each document's weight).
    """

    annotated: int = 0
    words_in: int = 0
    kept: int = 0
    dropped: int = 0
    sampled_out: int = 0
    records: int = 0
    repeats: int = 0
    tagged: int = 0
    words: float = 0

    def add(self, copies: int, weight: float | None, tagged: bool, n_words: int, out_words: int,
            dropped_by_rule: bool) -> None:
        self.annotated += 1
        self.words_in += n_words
        if copies == 0:
            if dropped_by_rule:
                self.dropped += 1
            else:
                self.sampled_out += 1
            return
        self.kept += 1
        self.records += copies
        self.repeats += copies - 1
        self.tagged += int(tagged)
        self.words += out_words * (weight if weight is not None else copies)


@dataclass
class OutputName:
    """Where one input file's output shards go: ``OUT/<folder>/<stem>-NNNNN<ext>``."""

    folder: str
    stem: str
    ext: str
    format: str
    compression: str | None


def output_name(f: InputFile) -> OutputName:
    """The output format follows the input's: jsonl, jsonl.gz, jsonl.zst or parquet (WARC/WET become jsonl.gz)."""
    base = os.path.basename(f.path.rstrip("/"))
    lower = base.lower()
    stem = base
    for ending in sorted(sum(FORMATS.values(), ()), key=len, reverse=True):
        if lower.endswith(ending):
            stem = base[: -len(ending)]
            break
    if f.format == "parquet":
        return OutputName(f.folder, stem, ".parquet", "parquet", None)
    if f.format == "warc":
        return OutputName(f.folder, stem, ".jsonl.gz", "jsonl", "gzip")
    ext = {"gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}.get(f.compression or "", ".jsonl")
    return OutputName(f.folder, stem, ext, "jsonl", f.compression)


def output_names(files: list[InputFile]) -> list[OutputName]:
    """One :class:`OutputName` per input; two inputs with the same folder and stem get a suffix from their path."""
    names = [output_name(f) for f in files]
    seen: dict[tuple[str, str], int] = {}
    for n in names:
        seen[(n.folder, n.stem)] = seen.get((n.folder, n.stem), 0) + 1
    for f, n in zip(files, names):
        if seen[(n.folder, n.stem)] > 1:
            n.stem = f"{n.stem}-{hashlib.sha1(f.path.encode()).hexdigest()[:8]}"
    return names


# --- upsampling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PositiveDoc:
    """One document of an upsampling corpus: where it is, its id and its words."""

    source: int
    file: str
    row: int
    id: str
    words: int


@dataclass(frozen=True)
class Copy:
    """One upsampled record to write: copy ``copy`` of a positive document, under ``id``.

    In sample mode every copy is a record (copy 1 keeps the document's id, copy k>1 is ``<id>#up<k>``); in
    weight mode each chosen document is one record whose ``weight`` is its number of copies.
    """

    source: int
    file: str
    row: int
    source_id: str
    id: str
    copy: int
    weight: float | None
    words: int  # of one record's text

    @property
    def effective_words(self) -> float:
        return self.words * (self.weight if self.weight is not None else 1)


@dataclass
class UpsampleTally:
    """What one upsampling source contributes; ``words`` are weighted in weight mode."""

    source: UpsampleSource
    available: int = 0
    available_words: int = 0
    rejected: int = 0
    copies: int = 0
    documents: int = 0
    records: int = 0
    words: float = 0
    target_words: float | None = None
    achieved_share: float = 0.0


def read_positives(source: UpsampleSource, index: int, policy: Policy) -> tuple[list[PositiveDoc], int]:
    """Ids and word counts of one upsampling corpus; returns ``(documents, rejected records)``."""
    try:
        files = discover_inputs([source.path])
    except AuditError as e:
        raise AuditError(Errors.CA706, path=source.path, file=policy.source,
                         detail="matches no files of a known format (.jsonl[.gz|.zst], .parquet)") from e
    reader = RecordReader(text_key=source.text_key, id_key=source.id_key)
    ledger = CountingLedger()
    docs = []
    for f in files:
        for doc in reader.documents(f, ledger):
            docs.append(PositiveDoc(index, f.path, doc.metadata["row"], str(doc.id), count_words(doc.text)))
    if not docs:
        raise AuditError(Errors.CA706, path=source.path, file=policy.source,
                         detail=f"no documents with a text field '{source.text_key}' in {len(files)} file(s)")
    if sum(d.words for d in docs) == 0:
        raise AuditError(Errors.CA706, path=source.path, file=policy.source, detail="its documents have no words")
    return docs, ledger.counts.rejected


def choose_copies(docs: list[PositiveDoc], source: UpsampleSource, target_words: float | None,
                  seed: int) -> list[tuple[PositiveDoc, int]]:
    """Which documents, and how many copies of each: ``repeat`` copies of all, or passes over the documents
    in an order fixed by ``(seed, id)``, each adding one more copy of every document that still brings the
    words closer to ``target_words``. The pass in which a document no longer fits is the last, so copy
    counts differ by at most one across documents.
    """
    order = sorted(docs, key=lambda d: (unit_hash(seed, "upsample", d.source, d.id), d.id, d.file, d.row))
    if source.repeat is not None:
        return [(d, k) for k in range(1, source.repeat + 1) for d in order]
    assert target_words is not None
    chosen: list[tuple[PositiveDoc, int]] = []
    acc = 0.0
    k = 1
    while True:
        added = skipped = False
        for d in order:
            if d.words == 0:
                continue
            if acc + d.words / 2 > target_words:  # one more copy would overshoot more than it helps
                skipped = True
                continue
            chosen.append((d, k))
            acc += d.words
            added = True
        if skipped or not added:
            return chosen
        k += 1


def make_copies(chosen: list[tuple[PositiveDoc, int]], mode: str) -> list[Copy]:
    """The records to write for the chosen ``(document, copy number)`` pairs (see :class:`Copy`)."""
    if mode == "weight":
        counts: dict[tuple[str, int], tuple[PositiveDoc, int]] = {}
        for d, _k in chosen:
            key = (d.file, d.row)
            counts[key] = (d, counts.get(key, (d, 0))[1] + 1)
        return [Copy(d.source, d.file, d.row, d.id, d.id, n, float(n), d.words) for d, n in counts.values()]
    return [Copy(d.source, d.file, d.row, d.id, d.id if k == 1 else f"{d.id}#up{k}", k, None, d.words)
            for d, k in chosen]


def allocate(n: int, weights: list[float]) -> list[int]:
    """Split ``n`` items over buckets in proportion to ``weights`` (largest remainder; ties to the earlier bucket).

    >>> allocate(5, [1, 1, 2])
    [1, 1, 3]
    """
    if not weights:
        return []
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * len(weights), float(len(weights))
    quotas = [n * w / total for w in weights]
    out = [int(q) for q in quotas]
    rest = n - sum(out)
    for i in sorted(range(len(weights)), key=lambda i: (-(quotas[i] - out[i]), i))[:rest]:
        out[i] += 1
    return out


def spread(count: int, records: int) -> list[int]:
    """Positions (kept-record indexes to insert before) of ``count`` copies spread evenly over ``records``.

    >>> spread(3, 9)
    [1, 4, 7]
    """
    if records <= 0:
        return [0] * count
    return [min(records - 1, int((j + 0.5) * records / count)) for j in range(count)]


# --- the plan ------------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything emit decided before writing: per-file tallies, upsampling, and insertions per file."""

    policy: Policy
    files: list[InputFile]
    names: list[OutputName]
    tallies: list[FileTally]
    rules: PolicyTally
    upsample: list[UpsampleTally]
    insertions: list[list[tuple[int, Copy]]] = field(default_factory=list)
    annotations: list[list[str]] = field(default_factory=list)  # per input: the annotation files holding it

    @property
    def kept_words(self) -> float:
        return sum(t.words for t in self.tallies)

    @property
    def upsampled_words(self) -> float:
        return sum(u.words for u in self.upsample)

    def task_plan(self, i: int) -> dict[str, Any]:
        """What task ``i`` needs: its input file, output name and the copies to insert (JSON-able)."""
        return {"file": asdict(self.files[i]), "name": asdict(self.names[i]), "records": self.tallies[i].records,
                "repeats": self.tallies[i].repeats, "annotated": self.tallies[i].annotated,
                "annotations": self.annotations[i],
                "insertions": [[pos, asdict(c)] for pos, c in self.insertions[i]]}


def _check_join(scan: ScanInfo, files: list[InputFile], tallies: list[FileTally],
                foreign: dict[str, int]) -> None:
    """Refuse annotations that were not made from these inputs (CA704)."""
    problems = []
    if foreign:
        example = sorted(foreign)[0]
        problems.append(f"{len(foreign)} annotated file(s) with {sum(foreign.values())} rows are not among the "
                        f"inputs (e.g. {example})")
    without = [f.path for f, t in zip(files, tallies) if t.annotated == 0]
    if len(without) == len(files):
        problems.append(f"none of the {len(files)} input file(s) has annotation rows (e.g. {without[0]})")
    scanned = (scan.record.get("files") or {}).get("inputs")
    if isinstance(scanned, int) and scanned != len(files):
        problems.append(f"the scan read {scanned} input file(s), emit was given {len(files)}")
    if problems:
        raise AuditError(Errors.CA704, path=scan.path, detail="; ".join(problems))


def make_plan(files: list[InputFile], scan: ScanInfo, policy: Policy) -> Plan:
    """Decide every annotated document and plan the upsampling (reads annotations and positive corpora only)."""
    index = {f.path: i for i, f in enumerate(files)}
    tallies = [FileTally() for _ in files]
    rules = PolicyTally([0] * (len(policy.rules) + 1), [0] * (len(policy.rules) + 1))
    foreign: dict[str, int] = {}
    holders: list[set[int]] = [set() for _ in files]  # which annotation files hold each input's rows
    for a, row in iter_annotations(scan.files):
        i = index.get(row["file"])
        if i is None:
            foreign[row["file"]] = foreign.get(row["file"], 0) + 1
            continue
        holders[i].add(a)
        decision = decide(row, policy)
        out = realise(decision, row["id"], row["n_words"], policy)
        rules.add(decision, row["n_words"])
        tallies[i].add(out.copies, out.weight, out.tag is not None, row["n_words"], out.words,
                       decision.action == "drop")
    _check_join(scan, files, tallies, foreign)

    plan = Plan(policy, files, output_names(files), tallies, rules, [],
                annotations=[[scan.files[a] for a in sorted(h)] for h in holders])
    plan.insertions = [[] for _ in files]
    if not policy.upsample:
        return plan
    positives = []
    for j, source in enumerate(policy.upsample):
        docs, rejected = read_positives(source, j, policy)
        positives.append(docs)
        plan.upsample.append(UpsampleTally(source, len(docs), sum(d.words for d in docs), rejected))
    kept = plan.kept_words
    fixed = sum(sum(d.words for d in docs) * (s.repeat or 0) for docs, s in zip(positives, policy.upsample))
    shares = sum(s.target_share or 0.0 for s in policy.upsample)
    total_out = (kept + fixed) / (1 - shares)  # output words once every target share is reached
    copies: list[Copy] = []
    for docs, tally in zip(positives, plan.upsample):
        s = tally.source
        tally.target_words = s.target_share * total_out if s.target_share is not None else None
        chosen = choose_copies(docs, s, tally.target_words, policy.seed)
        made = make_copies(chosen, policy.mode)
        tally.copies = len(chosen)
        tally.documents = len({(d.file, d.row) for d, _ in chosen})
        tally.records = len(made)
        tally.words = sum(c.effective_words for c in made)
        copies += made
    out_words = kept + plan.upsampled_words
    for tally in plan.upsample:
        tally.achieved_share = tally.words / out_words if out_words else 0.0

    # interleave: a seed-fixed order of all copies, dealt to files in proportion to their output words,
    # each file's share spread evenly through its records (so through all its shards)
    copies.sort(key=lambda c: (unit_hash(policy.seed, "interleave", c.source, c.id), c.source, c.id))
    counts = allocate(len(copies), [t.words for t in tallies])
    start = 0
    seen: dict[tuple[str, int], int] = {}
    for i, n in enumerate(counts):
        placed = []
        for pos, c in zip(spread(n, tallies[i].records), copies[start:start + n]):
            if c.weight is None:  # number a document's copies in output order: the first keeps its id
                k = seen[(c.file, c.row)] = seen.get((c.file, c.row), 0) + 1
                c = replace(c, copy=k, id=c.source_id if k == 1 else f"{c.source_id}#up{k}")
            placed.append((pos, c))
        plan.insertions[i] = placed
        start += n
    return plan
