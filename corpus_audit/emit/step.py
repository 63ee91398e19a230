"""The emit task: one input file in, its filtered, reweighted, tagged and upsampled shards out.

:class:`EmitStep` is a datatrove ``PipelineStep`` run once per input file on datatrove's executor. It
reads the file with the scan's own reader (same rows, same rejections), joins each document to its
annotation row by (file, row) and checks the id and word count, applies the policy decision, inserts the
planned upsampled copies at their positions, and writes shards that are published only after the whole
file was read and checked. Its counts go to ``.emit/tasks/NNNNN.json``, its dropped documents to
``.emit/dropped/NNNNN.parquet``; a user error goes to ``.emit/errors/NNNNN.json`` instead.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus_audit.emit.plan import Copy, OutputName, file_annotations
from corpus_audit.emit.policy import TAG_SEPARATOR, Policy, decide, drop_reason, realise
from corpus_audit.emit.records import CountingLedger, RecordReader, read_parquet_schema
from corpus_audit.emit.shards import ShardWriter
from corpus_audit.errors import AuditError, Errors
from corpus_audit.readers import InputFile, detect_format
from corpus_audit.storage import atomic_write_text, open_output, publish, read_text
from corpus_audit.text import count_words

DROPPED_SCHEMA = pa.schema([
    ("id", pa.string()), ("file", pa.string()), ("row", pa.int64()), ("label", pa.string()),
    ("n_words", pa.int64()), ("rule", pa.int64()), ("action", pa.string()), ("reason", pa.string()),
])
WEIGHT_FIELD = "weight"
UPSAMPLED_FIELD = "upsampled_from"
REPEATED_FIELD = "repeated_from"


@dataclass(frozen=True)
class TaskConfig:
    """What every emit task shares (picklable: it travels to datatrove's worker processes)."""

    output: str
    work: str
    policy: Policy
    annotations: str
    reader: tuple[tuple[str, Any], ...]
    max_shard_bytes: int

    def task_file(self, kind: str, rank: int, ext: str) -> str:
        return f"{self.work}/{kind}/{rank:05d}{ext}"


class EmitStep(PipelineStep):
    """datatrove step: task ``rank`` emits input file ``rank`` of the plan (see the module docstring)."""

    name = "✍️ corpus-audit emit"
    type = "💽 - WRITER"

    def __init__(self, config: TaskConfig) -> None:
        super().__init__()
        self.config = config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        result = run_task(self.config, rank)
        if result:
            for key in ("kept", "dropped", "upsampled", "out"):
                self.stat_update(key, value=result["documents"][key])


def run_task(config: TaskConfig, rank: int) -> dict[str, Any] | None:
    """Emit one input file; returns the task's counts, or None after recording a user error."""
    plan = json.loads(read_text(config.task_file("plan", rank, ".json")))
    try:
        result = _emit_file(config, rank, plan)
    except AuditError as e:
        # raising would print a traceback from the worker; the parent raises the same error from this file
        fields = {k: v if isinstance(v, int | float) else str(v) for k, v in e.fields.items()}
        atomic_write_text(config.task_file("errors", rank, ".json"), json.dumps({"code": e.code, "fields": fields}))
        return None
    atomic_write_text(config.task_file("tasks", rank, ".json"), json.dumps(result, sort_keys=True))
    return result


def _parquet_schema(f: InputFile, plan: dict[str, Any], policy: Policy) -> pa.Schema:
    schema = read_parquet_schema(f.path)
    extra = []
    if policy.mode == "weight":
        extra.append((WEIGHT_FIELD, pa.float64()))
    if plan["repeats"]:
        extra.append((REPEATED_FIELD, pa.string()))
    if plan["insertions"]:
        extra.append((UPSAMPLED_FIELD, pa.string()))
    extra = [(n, t) for n, t in extra if n not in schema.names]
    if extra:  # metadata such as pandas' column list would no longer describe the table
        schema = pa.schema(list(schema) + [pa.field(n, t) for n, t in extra])
    return schema


def _positive_records(config: TaskConfig, copies: list[Copy], text_key: str, id_key: str,
                      schema: pa.Schema | None) -> dict[tuple[str, int], tuple[dict[str, Any], str]]:
    """The positive documents this task inserts, as ``(file, row) -> (record fields, text)``.

    Fields other than id and text are kept; in a Parquet shard only the columns of its schema are, and
    when those do not convert, only id and text."""
    wanted: dict[str, dict[int, int]] = {}
    for c in copies:
        wanted.setdefault(c.file, {})[c.row] = c.source
    found: dict[tuple[str, int], tuple[dict[str, Any], str]] = {}
    for path in sorted(wanted):
        rows = wanted[path]
        src = config.policy.upsample[next(iter(rows.values()))]
        fmt, comp = detect_format(path)
        f = InputFile(path, fmt, comp, os.path.basename(os.path.dirname(path)), 0)
        reader = RecordReader(text_key=src.text_key, id_key=src.id_key)
        for doc in reader.documents(f, CountingLedger()):
            row = doc.metadata["row"]
            if row not in rows:
                continue
            rec = doc.metadata["record"]
            fields = {k: v for k, v in rec.items() if k not in (src.text_key, src.id_key, text_key, id_key)}
            if schema is not None:
                fields = {k: v for k, v in fields.items() if k in schema.names}
                try:
                    pa.Table.from_pylist([{text_key: doc.text, **fields}], schema=schema)
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
                    fields = {}
            found[(path, row)] = (fields, doc.text)
    missing = [c for c in copies if (c.file, c.row) not in found]
    if missing:
        c = missing[0]
        raise AuditError(Errors.CA706, path=c.file, file=config.policy.source,
                         detail=f"document {c.source_id!r} at row {c.row} is gone; the file changed since emit "
                                f"planned; run emit again")
    return found


def _emit_file(config: TaskConfig, rank: int, plan: dict[str, Any]) -> dict[str, Any]:
    policy = config.policy
    f = InputFile(**plan["file"])
    name = OutputName(**plan["name"])
    opts = dict(config.reader)
    text_key, id_key = opts.get("text_key", "text"), opts.get("id_key", "id")

    anns = file_annotations(plan["annotations"], f.path)  # merge-joined with the rows, below
    pending = next(anns, None)
    insertions = deque((pos, Copy(**c)) for pos, c in plan["insertions"])
    schema = _parquet_schema(f, plan, policy) if name.format == "parquet" else None
    positives = _positive_records(config, [c for _, c in insertions], text_key, id_key, schema)

    writer = ShardWriter(config.output, name.folder, name.stem, name.ext, format=name.format,
                         compression=name.compression, max_bytes=config.max_shard_bytes, schema=schema,
                         text_key=text_key)
    docs = dict.fromkeys(("in", "kept", "dropped", "sampled_out", "repeated", "tagged", "upsampled", "out"), 0)
    words: dict[str, float] = dict.fromkeys(("in", "kept", "upsampled", "written"), 0)
    dropped: dict[str, list[Any]] = {n: [] for n in DROPPED_SCHEMA.names}
    kept_index = 0

    def insert_before(index: int) -> None:
        while insertions and insertions[0][0] <= index:
            _, c = insertions.popleft()
            fields, text = positives[(c.file, c.row)]
            rec = {id_key: c.id, text_key: text, **fields, UPSAMPLED_FIELD: c.source_id}
            if policy.mode == "weight":
                rec[WEIGHT_FIELD] = c.weight
            writer.write(rec)
            docs["upsampled"] += 1
            words["upsampled"] += c.effective_words
            words["written"] += c.words

    ledger = CountingLedger()
    reader = RecordReader.from_scan_config(opts)
    try:
        for doc in reader.documents(f, ledger):
            row = doc.metadata["row"]
            if pending is not None and pending["row"] < row:
                raise AuditError(Errors.CA705, file=f.path, row=pending["row"],
                                 detail=f"the annotations have a document {pending['id']!r} here, the file has none")
            if pending is None or pending["row"] > row:
                raise AuditError(Errors.CA705, file=f.path, row=row,
                                 detail=f"document {doc.id!r} has no annotation row (was this file scanned?)")
            ann, pending = pending, next(anns, None)
            if pending is not None and pending["row"] == row:
                raise AuditError(Errors.CA704, path=config.annotations,
                                 detail=f"{f.path} row {row} has two annotation rows (two scans in one folder?)")
            if ann["id"] != doc.id:
                raise AuditError(Errors.CA705, file=f.path, row=row,
                                 detail=f"the document's id is {doc.id!r}, its annotation row's {ann['id']!r}")
            n_words = count_words(doc.text)
            if n_words != ann["n_words"]:
                raise AuditError(Errors.CA705, file=f.path, row=row,
                                 detail=f"document {doc.id!r} has {n_words} words, its annotation row says "
                                        f"{ann['n_words']}")
            docs["in"] += 1
            words["in"] += n_words
            out = realise(decide(ann, policy), doc.id, n_words, policy)
            if out.copies == 0:
                action, reason = drop_reason(out, ann)
                docs["dropped" if action == "drop" else "sampled_out"] += 1
                for key, value in (("id", doc.id), ("file", f.path), ("row", row), ("label", ann["label"]),
                                   ("n_words", n_words), ("rule", out.decision.rule.number if out.decision.rule
                                                          else None), ("action", action), ("reason", reason)):
                    dropped[key].append(value)
                continue
            record = doc.metadata["record"]
            if out.tag is not None:
                record[text_key] = out.tag + TAG_SEPARATOR + doc.text
                docs["tagged"] += 1
            if out.weight is not None:
                record[WEIGHT_FIELD] = out.weight
            docs["kept"] += 1
            for k in range(1, out.copies + 1):
                insert_before(kept_index)
                rec = record
                if k > 1:
                    rec = {**record, REPEATED_FIELD: doc.id}
                    if id_key in record:
                        rec[id_key] = f"{doc.id}#rep{k}"
                    docs["repeated"] += 1
                writer.write(rec)
                kept_index += 1
                words["kept"] += out.words * (out.weight if out.weight is not None else 1)
                words["written"] += out.words
        insert_before(kept_index)  # copies planned after the last record, or for a file with none
        if pending is not None:
            rest = 1 + sum(1 for _ in anns)
            raise AuditError(Errors.CA705, file=f.path, row=pending["row"],
                             detail=f"{rest} annotation row(s) from here on have no document in the file (first: "
                                    f"id {pending['id']!r})")
        shards = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        anns.close()
    if kept_index != plan["records"] or docs["in"] != plan["annotated"]:  # pragma: no cover - a bug, not input
        raise RuntimeError(f"task {rank}: wrote {kept_index} records for {docs['in']} documents, planned "
                           f"{plan['records']} for {plan['annotated']}")
    docs["out"] = kept_index + docs["upsampled"]

    tmp = config.task_file("dropped", rank, ".parquet.tmp")
    with open_output(tmp, "wb") as fh:
        import pyarrow.parquet as pq

        pq.write_table(pa.table(dropped, schema=DROPPED_SCHEMA), fh, compression="zstd")
    publish(tmp, config.task_file("dropped", rank, ".parquet"))
    writer.publish()
    return {
        "rank": rank,
        "file": f.path,
        "documents": docs | {"rejected_at_scan": ledger.counts.rejected},
        "words": words,
        "quarantined": ledger.counts.quarantined,
        "outputs": [{"path": s.path, "sha256": s.sha256, "documents": s.documents, "bytes": s.bytes} for s in shards],
    }
