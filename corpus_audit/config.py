"""The typed scan configuration: one dataclass is the source of the CLI flags, the YAML keys and ``--help``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import yaml

from corpus_audit.errors import AuditError, Errors

EXECUTORS = ("local", "ray", "slurm")
# where and how tasks run, not what they compute: a scan may resume on another executor
EXECUTION_KEYS = ("workers", "executor", "cpus_per_task", "mem_per_cpu_gb", "ray_address", "slurm_partition",
                  "slurm_time", "slurm_array_size", "slurm_sbatch_args", "slurm_venv")


def _opt(help: str, default: Any = None, **click_kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **click_kwargs})


@dataclass
class ScanConfig:
    """Everything that decides what ``scan`` does. YAML keys are the field names (``text_key``), CLI
    flags the same with dashes (``--text-key``)."""

    text_key: str = _opt("field holding the document text", "text")
    id_key: str = _opt("field holding the document id (else <file>#<row>)", "id")
    url_key: str = _opt("field holding the document URL (for the domain column)", "url")
    source: str = _opt("how to name a document's source: 'folder' (the input file's folder), "
                       "'field:<key>' (a metadata field) or 'name:<fixed name>'", "folder")
    workers: int = _opt("tasks run at once (default: the CPU cores locally, no limit on Ray and Slurm)", 0)
    tasks: int = _opt("tasks the input files are split into (default: one per file)", 0)
    limit: int = _opt("read at most this many documents per task (-1: all)", -1)
    model: str = _opt("fastText model (.ftz/.bin); default: the bundled model", "")
    rules: str = _opt("folder of rule packs (*.yml); default: the bundled packs", "")
    misaligned_threshold: float = _opt("score_misaligned_ai at or above which a document is labelled "
                                       "misaligned_ai (default: the model's tuned threshold)", -1.0)
    chunk_words: int = _opt("words per classifier window for long documents", 200)
    chunk_stride: int = _opt("words between the starts of consecutive windows", 150)
    max_chunks: int = _opt("windows scored per document at most, around the densest clusters of gate terms "
                           "(0: every window around a gate term)", 3)
    max_doc_bytes: int = _opt("reject documents longer than this many bytes", 64 * 1024 * 1024)
    invalid_utf8: str = _opt("what to do with a line of invalid UTF-8: 'reject' it, or 'replace' bad bytes",
                             "reject", type=click.Choice(["reject", "replace"]))
    executor: str = _opt("where the tasks run: 'local' processes, a 'ray' cluster or a 'slurm' job array",
                         "local", type=click.Choice(EXECUTORS))
    cpus_per_task: int = _opt("CPUs each task reserves on Ray or Slurm", 1)
    mem_per_cpu_gb: int = _opt("GB of memory reserved with each CPU on Ray or Slurm", 2)
    ray_address: str = _opt("Ray cluster to join ('auto' on a node of the cluster, or ray://HEAD:10001); "
                            "default: start a local cluster for the run", "")
    slurm_partition: str = _opt("Slurm partition the tasks run in (needed with --executor slurm)", "")
    slurm_time: str = _opt("Slurm time limit of each task", "12:00:00")
    slurm_array_size: int = _opt("most tasks in one Slurm job array (the cluster's MaxArraySize); more "
                                 "tasks are submitted as several arrays, one after the other", 1001)
    slurm_sbatch_args: str = _opt("more sbatch options as space-separated KEY=VALUE (or KEY for a flag), "
                                  "e.g. 'account=proj qos=high'; in YAML also a mapping", "")
    slurm_venv: str = _opt("virtualenv (folder or its bin/activate) the Slurm tasks activate; "
                           "default: the one running this command", "")

    @classmethod
    def from_yaml(cls, path: str) -> dict[str, Any]:
        """Read a YAML config file into a dict of known keys (dashes or underscores both accepted)."""
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as e:
            raise AuditError(Errors.CA201, path=path, detail=str(e).replace("\n", " ")) from e
        if not isinstance(data, dict):
            raise AuditError(Errors.CA201, path=path, detail="must be a mapping of option names to values")
        known = {f.name for f in dataclasses.fields(cls)}
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise AuditError(Errors.CA202, key=key, path=path, known=", ".join(sorted(known)))
            if name == "slurm_sbatch_args" and isinstance(value, dict):
                value = " ".join(str(k) if v in (None, "", True) else f"{k}={v}" for k, v in value.items())
            out[name] = value
        return out

    @classmethod
    def build(cls, *, config_file: str | None = None, **overrides: Any) -> ScanConfig:
        """Defaults, then the YAML file, then explicit overrides (``None`` means 'not given')."""
        values: dict[str, Any] = cls.from_yaml(config_file) if config_file else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            cfg = cls(**values)
        except TypeError as e:
            raise AuditError(Errors.CA201, path=config_file or "(options)", detail=str(e)) from e
        for f in dataclasses.fields(cls):
            v = getattr(cfg, f.name)
            want = type(f.default)
            if want is float and isinstance(v, int) and not isinstance(v, bool):
                setattr(cfg, f.name, float(v))
            elif not isinstance(v, want) or isinstance(v, bool) != (want is bool):
                raise AuditError(Errors.CA205, option=f.name, detail=f"expected {want.__name__}, got {v!r}")
        if cfg.chunk_stride <= 0 or cfg.chunk_words <= 0 or cfg.chunk_stride > cfg.chunk_words:
            raise AuditError(Errors.CA205, option="chunk_stride", detail="need 0 < chunk_stride <= chunk_words")
        if cfg.max_chunks < 0:
            raise AuditError(Errors.CA205, option="max_chunks", detail="need max_chunks >= 0")
        if cfg.executor not in EXECUTORS:
            raise AuditError(Errors.CA205, option="executor", detail=f"{cfg.executor!r} is not one of {', '.join(EXECUTORS)}")
        if cfg.cpus_per_task < 1 or cfg.mem_per_cpu_gb < 1:
            raise AuditError(Errors.CA205, option="cpus_per_task/mem_per_cpu_gb", detail="need at least 1")
        if cfg.executor == "slurm" and not cfg.slurm_partition:
            raise AuditError(Errors.CA205, option="slurm_partition",
                             detail="--executor slurm needs --slurm-partition (see `sinfo -s` for the partitions)")
        return cfg

    def resolved(self) -> dict[str, Any]:
        """The effective configuration, as recorded in ``scan.json``."""
        d = dataclasses.asdict(self)
        for key in ("model", "rules"):
            if d[key]:
                d[key] = os.path.abspath(d[key])
        return d


def click_options(cls: type, *, only: set[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add one ``--flag`` per dataclass field (or per field named in ``only``) to a click command, each
    defaulting to None ('not given')."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(dataclasses.fields(cls)):
            if only is not None and f.name not in only:
                continue
            meta = dict(f.metadata)
            help_text = meta.pop("help", "")
            default = f.default
            kwargs: dict[str, Any] = {"default": None, "help": f"{help_text} [default: {default!r}]"}
            kwargs["type"] = meta.pop("type", type(default))
            fn = click.option(f"--{f.name.replace('_', '-')}", f.name, **kwargs)(fn)
        return fn

    return decorate
