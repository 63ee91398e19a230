"""``scan``: stream input shards through gate, rules and classifier into annotation Parquet and ``scan.json``.

Runs as a datatrove pipeline (reader, annotate step, annotation writer) on one of datatrove's executors
(local processes, a Ray cluster or a Slurm job array: :mod:`corpus_audit.executors`). Each task writes its
annotations, ledger and rejected records under a temporary name and publishes them when complete, and
datatrove marks it complete; a re-run of the same command skips completed tasks and redoes the rest. A
change of inputs, configuration, model or rule packs is detected and refused rather than mixed. Inputs
and the output folder may be local paths or fsspec URLs (``s3://bucket/audit``, ``gs://...``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import fsspec

from corpus_audit import __version__
from corpus_audit.annotate import AnnotateStep, AnnotationWriter, DetectorConfig
from corpus_audit.classifier import file_sha256, load_thresholds
from corpus_audit.config import EXECUTION_KEYS, ScanConfig
from corpus_audit.errors import AuditError, Errors
from corpus_audit.executors import ExecutionOptions, run_pipeline, sbatch_script
from corpus_audit.labels import LABELS, UNNAMED_DEFAULT, UNNAMED_KEY
from corpus_audit.ledger import sum_ledgers
from corpus_audit.readers import ShardReader, SourceSpec, check_codecs, discover_inputs
from corpus_audit.resources import default_model_path
from corpus_audit.rules import load_rules
from corpus_audit.storage import (
    atomic_write_text,
    exists,
    forget_listings,
    is_local,
    join,
    list_files,
    makedirs,
    open_input,
    open_output,
    publish,
    read_text,
    remove,
)


@dataclass
class ScanResult:
    """What a scan did; ``record`` is the content of ``scan.json``."""

    output: str
    record: dict[str, Any]
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    submitted: str | None = None  # Slurm job id: the tasks were queued, scan.json is written by a re-run
    script: str | None = None  # dry run on Slurm: the sbatch script that would be submitted
    dry_run: bool = False

    @property
    def clean(self) -> bool:
        """True when nothing was rejected and no file was quarantined."""
        return self.record["documents"]["rejected"] == 0 and self.record["files"]["quarantined"] == 0


def _fingerprint(files: list[Any], cfg: dict[str, Any], model_sha: str, rules_sha: str, tasks: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"files": [(f.path, f.size) for f in files], "config": {k: v for k, v in cfg.items()
             if k not in EXECUTION_KEYS}, "model": model_sha, "rules": rules_sha, "tasks": tasks,
             "version": __version__}, sort_keys=True).encode())
    return h.hexdigest()


def _claim_output(output: str, fingerprint: str, overwrite: bool, *, dry_run: bool = False) -> None:
    """Make ``output`` ours: new, or holding a scan with the same fingerprint (then we resume).

    A dry run only checks, and writes nothing."""
    marker = join(output, ".scan-fingerprint")
    if exists(marker):
        old = read_text(marker).strip()
        if old != fingerprint:
            if not overwrite:
                raise AuditError(Errors.CA203, path=output,
                                 detail="inputs, options, model or rule packs changed since it was written")
            if dry_run:
                return
            for sub in ("annotations", "ledger", "rejected", "progress", "logs", "scan.json", "rejected.jsonl"):
                remove(join(output, sub))
    if dry_run:
        return
    makedirs(output)
    atomic_write_text(marker, fingerprint)


def scan(inputs: list[str] | tuple[str, ...], output: str, config: ScanConfig | None = None, *,
         overwrite: bool = False, progress: bool = False, verbose: bool = False, dry_run: bool = False) -> ScanResult:
    """Annotate every document of ``inputs`` (files, folders, globs; local or fsspec URLs) into ``output``.

    Writes ``output/annotations/NNNNN.parquet`` (one per task), ``output/scan.json`` and
    ``output/rejected.jsonl``; ``output`` may be an fsspec URL (``s3://bucket/audit``). The tasks run on
    ``config.executor`` (local, ray or slurm). Raises :class:`~corpus_audit.errors.AuditError` on bad
    options or when a task fails (CA501, naming the tasks); rejected records do not raise (see
    :attr:`ScanResult.clean`).

    On Slurm the tasks are submitted and the call returns at once with :attr:`ScanResult.submitted` set;
    the same call, made again after the job finished, checks the tasks and writes ``scan.json``.
    ``dry_run`` writes and runs nothing: the result holds the effective configuration, and on Slurm
    the sbatch script (:attr:`ScanResult.script`).

    Example::

        from corpus_audit import scan, ScanConfig
        result = scan(["shards/"], "out", ScanConfig(workers=2))
        print(result.record["labels"])
    """
    from corpus_audit.progress import Progress

    cfg = config or ScanConfig()
    output = output.rstrip("/") or output
    t0 = time.monotonic()
    files = discover_inputs(list(inputs))
    check_codecs(files)
    source = SourceSpec.parse(cfg.source)
    model_path = os.path.abspath(cfg.model or default_model_path())
    model_sha = file_sha256(model_path) if os.path.isfile(model_path) else ""
    if not model_sha:
        raise AuditError(Errors.CA401, path=model_path)
    rules = load_rules(cfg.rules or None)
    tasks = cfg.tasks if cfg.tasks > 0 else len(files)
    execution = ExecutionOptions.from_config(cfg)
    effective = cfg.resolved() | {"tasks": tasks, "workers": execution.workers_for(tasks), "model": model_path,
                                  "rules": os.path.dirname(rules.files[0]) if rules.files else ""}
    _claim_output(output, _fingerprint(files, effective, model_sha, rules.sha256, tasks), overwrite, dry_run=dry_run)

    thresholds = {UNNAMED_KEY: UNNAMED_DEFAULT, **load_thresholds(model_path)}
    if cfg.misaligned_threshold >= 0:
        thresholds["misaligned_ai"] = cfg.misaligned_threshold
    effective["thresholds"] = thresholds
    detectors = DetectorConfig(model_path=model_path, rules_dir=cfg.rules or None,
                               thresholds=tuple(sorted(thresholds.items())),
                               chunk_words=cfg.chunk_words, chunk_stride=cfg.chunk_stride,
                               max_chunks=cfg.max_chunks)
    pipeline = [
        ShardReader(files, ledger_dir=output, text_key=cfg.text_key, id_key=cfg.id_key, url_key=cfg.url_key,
                    source=source, limit=cfg.limit, max_doc_bytes=cfg.max_doc_bytes, invalid_utf8=cfg.invalid_utf8),
        AnnotateStep(detectors),
        AnnotationWriter(join(output, "annotations")),
    ]
    logs = join(output, "logs")
    if dry_run:
        plan = {"dry_run": True, "config": effective, "files": {"inputs": len(files)},
                "input_bytes": sum(f.size for f in files)}
        script = sbatch_script(pipeline, tasks=tasks, logging_dir=logs, options=execution) \
            if execution.executor == "slurm" else None
        return ScanResult(output, plan, script=script, dry_run=True)

    # the progress display polls the tasks' progress files: cheap on a local disk only
    with Progress(output, sum(f.size for f in files), enabled=progress and is_local(output)):
        run = run_pipeline(pipeline, tasks=tasks, logging_dir=logs, options=execution, verbose=verbose)
    if run.submitted:
        return ScanResult(output, {"submitted": run.submitted, "config": effective}, submitted=run.submitted)
    record = _write_records(output, tasks, files, effective, model_sha, rules.sha256, time.monotonic() - t0)
    return ScanResult(output, record, record["quarantined"])


def _write_records(output: str, tasks: int, files: list[Any], effective: dict[str, Any], model_sha: str,
                   rules_sha: str, seconds: float) -> dict[str, Any]:
    """Add up the tasks' ledgers and annotations into ``scan.json`` and merge ``rejected.jsonl``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    forget_listings(output)  # the tasks wrote from other processes, maybe other machines
    ledger = sum_ledgers(output, range(tasks))
    labels = dict.fromkeys(LABELS, 0)
    annotated = gated = 0
    for p in list_files(join(output, "annotations"), "*.parquet"):
        # by path, not through a Python file object: pyarrow releasing such a reader's buffers on its own
        # threads while the interpreter exits can abort the process (seen as exit 134 under load)
        # (ParquetFile, not pq.read_table: that one imports pandas, a third of a second at every scan's end)
        fs, path = fsspec.core.url_to_fs(p)
        t = pq.ParquetFile(path, filesystem=fs).read(columns=["label", "gated"])
        annotated += t.num_rows
        gated += int(pc.sum(t["gated"]).as_py() or 0)
        for row in pc.value_counts(t["label"]).to_pylist():
            labels[row["values"]] = labels.get(row["values"], 0) + row["counts"]
    tmp = join(output, "rejected.jsonl.tmp")
    with open_output(tmp, "wb") as out:
        for p in list_files(join(output, "rejected"), "*.jsonl"):  # NNNNN.jsonl: task order
            with open_input(p) as fh:
                shutil.copyfileobj(fh, out)
    publish(tmp, join(output, "rejected.jsonl"))
    record = {
        "documents": {"read": ledger.read, "annotated": annotated, "rejected": ledger.rejected, "gated": gated},
        "files": {"read": ledger.files_read, "quarantined": len(ledger.quarantined), "inputs": len(files)},
        "labels": labels,
        "rejected_reasons": ledger.reasons,
        "quarantined": ledger.quarantined,
        "model": model_sha,
        "rules": rules_sha,
        "config": effective,
        "seconds": round(seconds, 3),
        "version": __version__,
    }
    if ledger.read != annotated + ledger.rejected:
        # cannot happen unless a step dropped documents; say so rather than write a wrong record
        record["accounting_error"] = f"read {ledger.read} != annotated {annotated} + rejected {ledger.rejected}"
    atomic_write_text(join(output, "scan.json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
