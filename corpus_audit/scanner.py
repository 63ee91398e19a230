"""``scan``: stream input shards through gate, rules and classifier into annotation Parquet and ``scan.json``.

Runs as a datatrove pipeline (reader, annotate step, annotation writer) on datatrove's local executor.
Each task writes its annotations, ledger and rejected records atomically, and datatrove marks it
complete; a re-run of the same command skips completed tasks and redoes the rest. A change of
inputs, configuration, model or rule packs is detected and refused rather than mixed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from corpus_audit import __version__
from corpus_audit.annotate import AnnotateStep, AnnotationWriter, DetectorConfig
from corpus_audit.classifier import file_sha256, load_thresholds
from corpus_audit.config import ScanConfig
from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import LABELS
from corpus_audit.ledger import sum_ledgers
from corpus_audit.readers import ShardReader, SourceSpec, check_codecs, discover_inputs
from corpus_audit.resources import default_model_path
from corpus_audit.rules import load_rules
from corpus_audit.storage import atomic_write_text


@dataclass
class ScanResult:
    """What a scan did; ``record`` is the content of ``scan.json``."""

    output: str
    record: dict[str, Any]
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing was rejected and no file was quarantined."""
        return self.record["documents"]["rejected"] == 0 and self.record["files"]["quarantined"] == 0


def _console_logging(verbose: bool) -> None:
    """datatrove logs every task to the console; unless ``verbose``, keep only errors there."""
    if verbose:
        return
    from datatrove.utils.logging import logger  # the worker's own logger, not a pickled copy

    logger.remove()
    logger.add(sys.stderr, level="ERROR", backtrace=False, diagnose=False)


def _local_executor(verbose: bool, **kwargs: Any) -> Any:
    """datatrove's local executor with quiet console logging (task logs still go to their files)."""
    from datatrove.executor import LocalPipelineExecutor

    class QuietLocalExecutor(LocalPipelineExecutor):  # type: ignore[misc]
        def _launch_run_for_rank(self, *args: Any, **kw: Any) -> Any:
            _console_logging(verbose)
            return super()._launch_run_for_rank(*args, **kw)

        def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
            # datatrove prints a task's INFO logs for local_rank 0 only, and restores its default
            # console logger after each task
            try:
                return super()._run_for_rank(rank, local_rank if verbose else local_rank + 1, node_rank)
            finally:
                _console_logging(verbose)

    _console_logging(verbose)
    return QuietLocalExecutor(**kwargs)


def _fingerprint(files: list[Any], cfg: dict[str, Any], model_sha: str, rules_sha: str, tasks: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"files": [(f.path, f.size) for f in files], "config": {k: v for k, v in cfg.items()
             if k != "workers"}, "model": model_sha, "rules": rules_sha, "tasks": tasks,
             "version": __version__}, sort_keys=True).encode())
    return h.hexdigest()


def _claim_output(output: str, fingerprint: str, overwrite: bool) -> None:
    """Make ``output`` ours: new, or holding a scan with the same fingerprint (then we resume)."""
    marker = os.path.join(output, ".scan-fingerprint")
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as fh:
            old = fh.read().strip()
        if old != fingerprint:
            if not overwrite:
                raise AuditError(Errors.CA203, path=output,
                                 detail="inputs, options, model or rule packs changed since it was written")
            for sub in ("annotations", "ledger", "rejected", "progress", "logs"):
                shutil.rmtree(os.path.join(output, sub), ignore_errors=True)
            for f in ("scan.json", "rejected.jsonl"):
                if os.path.exists(os.path.join(output, f)):
                    os.remove(os.path.join(output, f))
    os.makedirs(output, exist_ok=True)
    atomic_write_text(marker, fingerprint)


def scan(inputs: list[str] | tuple[str, ...], output: str, config: ScanConfig | None = None, *,
         overwrite: bool = False, progress: bool = False, verbose: bool = False) -> ScanResult:
    """Annotate every document of ``inputs`` (files, folders, globs) into ``output``.

    Writes ``output/annotations/NNNNN.parquet`` (one per task), ``output/scan.json`` and
    ``output/rejected.jsonl``. Raises :class:`~corpus_audit.errors.AuditError` on bad options or
    when a task fails; rejected records do not raise (see :attr:`ScanResult.clean`).

    Example::

        from corpus_audit import scan, ScanConfig
        result = scan(["shards/"], "out", ScanConfig(workers=2))
        print(result.record["labels"])
    """
    from corpus_audit.progress import Progress

    cfg = config or ScanConfig()
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
    workers = cfg.workers if cfg.workers > 0 else (os.cpu_count() or 1)
    workers = max(1, min(workers, tasks))
    effective = cfg.resolved() | {"tasks": tasks, "workers": workers, "model": model_path,
                                  "rules": os.path.dirname(rules.files[0]) if rules.files else ""}
    _claim_output(output, _fingerprint(files, effective, model_sha, rules.sha256, tasks), overwrite)

    thresholds = dict(load_thresholds(model_path))
    if cfg.misaligned_threshold >= 0:
        thresholds["misaligned_ai"] = cfg.misaligned_threshold
    effective["thresholds"] = thresholds
    detectors = DetectorConfig(model_path=model_path, rules_dir=cfg.rules or None,
                               thresholds=tuple(sorted(thresholds.items())),
                               chunk_words=cfg.chunk_words, chunk_stride=cfg.chunk_stride)
    pipeline = [
        ShardReader(files, ledger_dir=output, text_key=cfg.text_key, id_key=cfg.id_key, url_key=cfg.url_key,
                    source=source, limit=cfg.limit, max_doc_bytes=cfg.max_doc_bytes, invalid_utf8=cfg.invalid_utf8),
        AnnotateStep(detectors),
        AnnotationWriter(os.path.join(output, "annotations")),
    ]
    executor = _local_executor(verbose, pipeline=pipeline, tasks=tasks, workers=workers,
                               logging_dir=os.path.join(output, "logs"), skip_completed=True)
    failure: BaseException | None = None
    with Progress(output, sum(f.size for f in files), enabled=progress):
        try:
            executor.run()
        except Exception as e:  # a task raised: report which tasks are incomplete, below
            failure = e
    incomplete = executor.get_incomplete_ranks(range(tasks), skip_completed=True)
    if incomplete or failure is not None:
        detail = ", ".join(str(r) for r in incomplete[:20]) or "unknown"
        if failure is not None:
            detail += f" (first error: {type(failure).__name__}: {failure})"
        raise AuditError(Errors.CA501, n=len(incomplete) or "some", detail=detail, logs=os.path.join(output, "logs"))
    record = _write_records(output, tasks, files, effective, model_sha, rules.sha256, time.monotonic() - t0)
    return ScanResult(output, record, record["quarantined"])


def _write_records(output: str, tasks: int, files: list[Any], effective: dict[str, Any], model_sha: str,
                   rules_sha: str, seconds: float) -> dict[str, Any]:
    """Add up the tasks' ledgers and annotations into ``scan.json`` and merge ``rejected.jsonl``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ledger = sum_ledgers(output, range(tasks))
    labels = dict.fromkeys(LABELS, 0)
    annotated = gated = 0
    for p in sorted(glob.glob(os.path.join(output, "annotations", "*.parquet"))):
        t = pq.read_table(p, columns=["label", "gated"])
        annotated += t.num_rows
        gated += int(pc.sum(t["gated"]).as_py() or 0)
        for row in pc.value_counts(t["label"]).to_pylist():
            labels[row["values"]] = labels.get(row["values"], 0) + row["counts"]
    tmp = os.path.join(output, "rejected.jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for rank in range(tasks):
            p = os.path.join(output, "rejected", f"{rank:05d}.jsonl")
            if os.path.exists(p):
                with open(p, encoding="utf-8") as fh:
                    shutil.copyfileobj(fh, out)
    os.replace(tmp, os.path.join(output, "rejected.jsonl"))
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
    atomic_write_text(os.path.join(output, "scan.json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
