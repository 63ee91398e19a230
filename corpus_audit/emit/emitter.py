"""``emit``: write cleaner shards from the original inputs and a scan's annotations, under a policy.

The steps: validate the policy; join the inputs to the scan's annotation rows and plan every decision and
every upsampled copy from the annotations alone (:mod:`corpus_audit.emit.plan`); then run one datatrove
task per input file (:mod:`corpus_audit.emit.step`) on datatrove's local executor; then add the tasks'
counts into ``OUT/manifest.json`` and their dropped documents into ``OUT/.dropped.parquet``.

The dropped list's name starts with a dot on purpose: tools that collect ``OUT/**/*.parquet`` as
training shards (and ``corpus-audit scan OUT``) must not pick up the list of what was removed. Work files
(plans, task results, datatrove logs) live in ``OUT/.emit/``. Re-running the same command resumes:
finished tasks are skipped. Other inputs, annotations, policy or options are refused (CA707) unless
``overwrite``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from corpus_audit import __version__
from corpus_audit.emit.plan import Plan, ScanInfo, make_plan, read_scan
from corpus_audit.emit.policy import Policy, UpsampleSource, load_policy
from corpus_audit.emit.records import read_parquet_table
from corpus_audit.emit.step import DROPPED_SCHEMA, EmitStep, TaskConfig
from corpus_audit.errors import AuditError, Errors
from corpus_audit.executors import ExecutionOptions, run_pipeline
from corpus_audit.readers import InputFile, check_codecs, discover_inputs
from corpus_audit.storage import atomic_write_text, exists, open_output, publish, read_text

DEFAULT_MAX_SHARD_BYTES = 256 * 1024 * 1024
DEFAULT_UPSAMPLE_SHARE = 0.01
DROPPED_LIST = ".dropped.parquet"
MANIFEST = "manifest.json"
WORK = ".emit"
READER_KEYS = ("text_key", "id_key", "url_key", "max_doc_bytes", "invalid_utf8")


@dataclass
class EmitResult:
    """What emit did (or, for a dry run, would do); ``record`` is the content of ``manifest.json``."""

    output: str
    record: dict[str, Any]
    plan: Plan
    dry_run: bool = False


def default_upsample() -> UpsampleSource:
    """The bundled positive-AI documents at :data:`DEFAULT_UPSAMPLE_SHARE` of output words."""
    from corpus_audit.resources import positive_corpus_dir

    return UpsampleSource(positive_corpus_dir(), target_share=DEFAULT_UPSAMPLE_SHARE)


def emit(inputs: list[str] | tuple[str, ...], annotations: str, output: str, policy: str | Policy, *,
         upsample_default: bool = False, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, workers: int = 0,
         dry_run: bool = False, overwrite: bool = False, verbose: bool = False,
         execution: ExecutionOptions | None = None) -> EmitResult:
    """Write ``inputs`` (the files, folders or globs given to ``scan``) to ``output`` under ``policy``.

    Args:
        inputs: the scan's inputs; they must be the files the annotations were made from (else CA704).
        annotations: the folder ``corpus-audit scan`` wrote (``annotations/*.parquet`` and ``scan.json``).
        output: folder for the shards, ``manifest.json`` and ``.dropped.parquet``.
        policy: a policy file (YAML) or a :class:`Policy`.
        upsample_default: when the policy has no ``upsample`` section, add the bundled positive corpus at
            :data:`DEFAULT_UPSAMPLE_SHARE` of output words.
        max_shard_bytes: start a new output shard before one passes this size (uncompressed), default 256 MiB.
        workers: tasks (input files) written at once; 0 means one per CPU core.
        dry_run: plan and return the would-be manifest without writing anything.
        overwrite: replace an emit in ``output`` made with other inputs, annotations, policy or options.
        verbose: show datatrove's task logs.
        execution: where the tasks run (local processes, a Ray cluster or a Slurm job array, see
            :class:`~corpus_audit.executors.ExecutionOptions`); ``workers`` applies locally. On Slurm the
            call returns once the job is submitted (``record["submitted"]`` holds the job id): run the
            same command again after the job has finished to check the tasks and write the manifest.

    Example::

        from corpus_audit.emit import emit
        result = emit(["shards/"], "audit/", "clean/", "policy.yml")
        print(result.record["documents"])   # {"in": ..., "kept": ..., "dropped": ..., "out": ...}
    """
    t0 = time.monotonic()
    pol = load_policy(policy) if isinstance(policy, str) else policy
    if upsample_default and not pol.upsample:
        pol = pol.with_upsample((default_upsample(),))
    if not isinstance(max_shard_bytes, int) or max_shard_bytes < 1:
        raise AuditError(Errors.CA205, option="max_shard_bytes", detail=f"must be a positive size, not {max_shard_bytes!r}")
    files = discover_inputs(list(inputs))
    check_codecs(files)
    scan = read_scan(annotations)
    plan = make_plan(files, scan, pol)
    if dry_run:
        return EmitResult(output, _preview(plan, scan, max_shard_bytes), plan, dry_run=True)

    _claim_output(output, _fingerprint(files, scan, pol, max_shard_bytes), overwrite)
    work = f"{output.rstrip('/')}/{WORK}"
    _clear(f"{work}/errors")
    for i in range(len(files)):
        atomic_write_text(f"{work}/plan/{i:05d}.json", json.dumps(plan.task_plan(i)))
    config = TaskConfig(output=output.rstrip("/"), work=work, policy=pol, annotations=scan.path,
                        reader=tuple((k, scan.config[k]) for k in READER_KEYS if k in scan.config),
                        max_shard_bytes=max_shard_bytes)
    tasks = len(files)
    options = execution or ExecutionOptions()
    if options.executor == "local":
        n_workers = max(1, min(workers if workers > 0 else (os.cpu_count() or 1), tasks))
        options = dataclasses.replace(options, workers=n_workers)
    run = run_pipeline([EmitStep(config)], tasks=tasks, logging_dir=f"{work}/logs", options=options,
                       verbose=verbose, before_check=lambda: _raise_task_errors(work))
    if run.submitted:
        return EmitResult(output, {"submitted": run.submitted, "executor": options.executor}, plan)
    record = _write_records(output.rstrip("/"), work, plan, scan, max_shard_bytes, time.monotonic() - t0)
    return EmitResult(output, record, plan)


# --- output folder -------------------------------------------------------------------------


def _fingerprint(files: list[InputFile], scan: ScanInfo, policy: Policy, max_shard_bytes: int) -> str:
    positives = []
    for s in policy.upsample:
        positives += [(f.path, f.size) for f in discover_inputs([s.path])]
    return hashlib.sha256(json.dumps({
        "inputs": [(f.path, f.size) for f in files], "scan": scan.fingerprint(), "policy": policy.as_dict(),
        "positives": positives, "max_shard_bytes": max_shard_bytes, "version": __version__,
    }, sort_keys=True).encode()).hexdigest()


def _fs(path: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(path)  # type: ignore[no-any-return]


def _claim_output(output: str, fingerprint: str, overwrite: bool) -> None:
    """Make ``output`` ours: new or empty, or holding an emit with the same fingerprint (then we resume)."""
    marker = f"{output.rstrip('/')}/{WORK}/fingerprint"
    fs, p = _fs(output)
    if exists(marker):
        if read_text(marker).strip() != fingerprint:
            if not overwrite:
                raise AuditError(Errors.CA707, path=output, detail="holds an emit made with other inputs, "
                                 "annotations, policy or options; choose a new -o folder or pass --overwrite to "
                                 "replace it")
            fs.rm(p, recursive=True)
    elif fs.exists(p) and (not fs.isdir(p) or fs.ls(p)):
        raise AuditError(Errors.CA707, path=output, detail="exists and was not written by emit; choose a new or "
                         "empty -o folder")
    atomic_write_text(marker, fingerprint)


def _clear(folder: str) -> None:
    fs, p = _fs(folder)
    if fs.exists(p):
        fs.rm(p, recursive=True)


def _raise_task_errors(work: str) -> None:
    """A task that met a user error recorded it and ended; make it incomplete and raise its error."""
    fs, p = _fs(f"{work}/errors")
    if not fs.exists(p):
        return
    found = sorted(fs.ls(p, detail=False))
    if not found:
        return
    for path in found:
        rank = os.path.basename(path).split(".")[0]
        done = f"{work}/logs/completions/{rank}"
        cfs, cp = _fs(done)
        if cfs.exists(cp):
            cfs.rm(cp)
    with fs.open(found[0], "rt", encoding="utf-8") as fh:
        first = json.load(fh)
    raise AuditError(Errors[first["code"]], **first["fields"])


# --- records ---------------------------------------------------------------------------------


def _policy_record(plan: Plan) -> dict[str, Any]:
    pol = plan.policy
    return pol.as_dict() | {"path": pol.source, "sha256": pol.sha256}


def _rules_record(plan: Plan) -> list[dict[str, Any]]:
    rows = [{"rule": r.number, "describe": r.describe(), "documents": plan.rules.documents[r.number],
             "words": plan.rules.words[r.number]} for r in plan.policy.rules]
    return rows + [{"rule": None, "describe": "no rule matched: kept", "documents": plan.rules.documents[0],
                    "words": plan.rules.words[0]}]


def _upsample_record(plan: Plan, out_words: float) -> list[dict[str, Any]]:
    return [{"path": u.source.path, "target_share": u.source.target_share, "repeat": u.source.repeat,
             "achieved_share": round(u.words / out_words, 6) if out_words else 0.0,
             "copies": u.copies, "documents": u.documents, "records": u.records, "words": u.words,
             "available": u.available, "available_words": u.available_words, "rejected": u.rejected}
            for u in plan.upsample]


def _common(plan: Plan, scan: ScanInfo, max_shard_bytes: int) -> dict[str, Any]:
    return {
        "policy": _policy_record(plan),
        "mode": plan.policy.mode,
        "seed": plan.policy.seed,
        "rules": _rules_record(plan),
        "annotations": {"path": os.path.abspath(scan.path), "model": scan.record.get("model"),
                        "rules": scan.record.get("rules")},
        "max_shard_bytes": max_shard_bytes,
        "version": __version__,
    }


def _preview(plan: Plan, scan: ScanInfo, max_shard_bytes: int) -> dict[str, Any]:
    """The manifest a run would write, from the plan (no outputs, no checksums)."""
    t = plan.tallies
    kept, dropped = sum(x.kept for x in t), sum(x.dropped + x.sampled_out for x in t)
    records = sum(x.records for x in t) + sum(u.records for u in plan.upsample)
    out_words = plan.kept_words + plan.upsampled_words
    return {
        "dry_run": True,
        "documents": {"in": kept + dropped, "kept": kept, "dropped": dropped,
                      "upsampled": sum(u.records for u in plan.upsample), "out": records,
                      "dropped_by_rule": sum(x.dropped for x in t), "sampled_out": sum(x.sampled_out for x in t),
                      "repeated": sum(x.repeats for x in t), "tagged": sum(x.tagged for x in t)},
        "words": {"in": sum(x.words_in for x in t), "kept": plan.kept_words, "upsampled": plan.upsampled_words,
                  "out": out_words},
        "inputs": [{"path": f.path, "format": f.format, "compression": f.compression, "documents": x.annotated,
                    "kept": x.kept, "dropped": x.dropped + x.sampled_out, "out": x.records + len(ins),
                    "output": f"{n.folder}/{n.stem}-NNNNN{n.ext}"}
                   for f, x, n, ins in zip(plan.files, t, plan.names, plan.insertions)],
        "upsample": _upsample_record(plan, out_words),
        **_common(plan, scan, max_shard_bytes),
    }


def _write_records(output: str, work: str, plan: Plan, scan: ScanInfo, max_shard_bytes: int,
                   seconds: float) -> dict[str, Any]:
    """Add the tasks' results into ``manifest.json`` and their dropped documents into ``.dropped.parquet``."""
    import pyarrow.parquet as pq

    results = [json.loads(read_text(f"{work}/tasks/{i:05d}.json")) for i in range(len(plan.files))]
    docs: dict[str, int] = {}
    words: dict[str, float] = {}
    for r in results:
        for k, v in r["documents"].items():
            docs[k] = docs.get(k, 0) + v
        for k, v in r["words"].items():
            words[k] = words.get(k, 0) + v
    tmp = f"{output}/{DROPPED_LIST}.tmp"
    with open_output(tmp, "wb") as fh:
        writer = pq.ParquetWriter(fh, DROPPED_SCHEMA, compression="zstd")
        for i in range(len(plan.files)):
            table = read_parquet_table(f"{work}/dropped/{i:05d}.parquet")
            if table.num_rows:
                writer.write_table(table)
        writer.close()
    publish(tmp, f"{output}/{DROPPED_LIST}")

    out_words = words["kept"] + words["upsampled"]
    quarantined = [q for r in results for q in r["quarantined"]]
    record = {
        "documents": {"in": docs["in"], "kept": docs["kept"], "dropped": docs["dropped"] + docs["sampled_out"],
                      "upsampled": docs["upsampled"], "out": docs["out"], "dropped_by_rule": docs["dropped"],
                      "sampled_out": docs["sampled_out"], "repeated": docs["repeated"], "tagged": docs["tagged"],
                      "rejected_at_scan": docs["rejected_at_scan"]},
        "words": {"in": words["in"], "kept": words["kept"], "upsampled": words["upsampled"], "out": out_words}
        | ({"written": words["written"]} if plan.policy.mode == "weight" else {}),
        "inputs": [{"path": r["file"], "format": f.format, "compression": f.compression,
                    "documents": r["documents"]["in"], "kept": r["documents"]["kept"],
                    "dropped": r["documents"]["dropped"] + r["documents"]["sampled_out"],
                    "out": r["documents"]["out"], "rejected_at_scan": r["documents"]["rejected_at_scan"],
                    "outputs": [o["path"] for o in r["outputs"]]}
                   for r, f in zip(results, plan.files)],
        "outputs": [o for r in results for o in r["outputs"]],
        "upsample": _upsample_record(plan, out_words),
        "files": {"inputs": len(plan.files), "quarantined": len(quarantined)},
        "quarantined": quarantined,
        "dropped_list": DROPPED_LIST,
        **_common(plan, scan, max_shard_bytes),
        "seconds": round(seconds, 3),
    }
    atomic_write_text(f"{output}/{MANIFEST}", json.dumps(record, indent=2) + "\n")
    return record
