"""Run a datatrove pipeline on one of datatrove's executors (local, Ray, Slurm) and check that every task completed.

The project writes no scheduler of its own: ``scan`` (and ``emit``) hand their pipeline to
:func:`run_pipeline`, which builds datatrove's ``LocalPipelineExecutor``, ``RayPipelineExecutor`` or
``SlurmPipelineExecutor`` from :class:`ExecutionOptions`, runs it and then reads datatrove's completion
markers (``LOGS/completions/NNNNN``). The markers, not the executor's return, decide: datatrove's Ray
executor returns normally when a task raised, and a Slurm submission returns before any task ran.

Example::

    from corpus_audit.executors import ExecutionOptions, run_pipeline
    run = run_pipeline(pipeline, tasks=8, logging_dir="out/logs", options=ExecutionOptions(executor="ray"))
    if run.submitted:   # Slurm: the tasks are queued; run the same call again once the job has finished
        print("job", run.submitted)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from corpus_audit.config import EXECUTORS
from corpus_audit.errors import AuditError, Errors
from corpus_audit.storage import atomic_write_text, exists, forget_listings, join, read_text

SLURM_JOB_RECORD = "slurm_job.json"  # in the logging folder: the last submitted job, to refuse a second one


@dataclass(frozen=True)
class ExecutionOptions:
    """Where and how the tasks of a pipeline run. Field names and defaults are those of
    :class:`~corpus_audit.config.ScanConfig`, which makes them CLI flags and YAML keys.

    Args:
        executor: "local" (processes on this machine), "ray" (a Ray cluster) or "slurm" (a job array).
        workers: tasks run at once; 0: the CPU cores locally, no limit on Ray and Slurm.
        cpus_per_task, mem_per_cpu_gb: resources each task reserves on Ray and Slurm.
        ray_address: the Ray cluster to join; "" starts a local cluster for the run.
        slurm_partition, slurm_time, slurm_array_size, slurm_sbatch_args, slurm_venv, slurm_job_name:
            the sbatch options (``slurm_sbatch_args`` as ``"KEY=VALUE KEY2=VALUE2"``).
    """

    executor: str = "local"
    workers: int = 0
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 2
    ray_address: str = ""
    slurm_partition: str = ""
    slurm_time: str = "12:00:00"
    slurm_array_size: int = 1001
    slurm_sbatch_args: str = ""
    slurm_venv: str = ""
    slurm_job_name: str = "corpus-audit"

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> ExecutionOptions:
        """Take the fields of the same names from ``config`` (a ScanConfig or any object), then ``overrides``."""
        values = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
        return cls(**(values | overrides))

    def workers_for(self, tasks: int) -> int:
        """Tasks run at once, between 1 and ``tasks``."""
        if self.workers > 0:
            return max(1, min(self.workers, tasks))
        if self.executor == "local":
            return max(1, min(os.cpu_count() or 1, tasks))
        return max(1, tasks)


@dataclass
class PipelineRun:
    """What :func:`run_pipeline` did. ``submitted`` is the Slurm job id when the tasks were queued rather
    than run; otherwise every task completed."""

    executor: str
    tasks: int
    logging_dir: str
    submitted: str | None = None


# --- local -------------------------------------------------------------------------------------


def _console_logging(verbose: bool) -> None:
    """datatrove logs every task to the console; unless ``verbose``, keep only errors there."""
    if verbose:
        return
    from datatrove.utils.logging import logger  # the worker's own logger, not a pickled copy

    logger.remove()
    logger.add(sys.stderr, level="ERROR", backtrace=False, diagnose=False)


def local_executor(verbose: bool, **kwargs: Any) -> Any:
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


# --- Slurm -------------------------------------------------------------------------------------


def parse_sbatch_args(text: str) -> dict[str, str]:
    """``"account=proj qos=high exclusive"`` -> ``{"account": "proj", "qos": "high", "exclusive": ""}``.

    >>> parse_sbatch_args("--account=proj exclusive")
    {'account': 'proj', 'exclusive': ''}
    """
    out: dict[str, str] = {}
    for item in shlex.split(text or ""):
        key, _, value = item.lstrip("-").partition("=")
        if not key:
            raise AuditError(Errors.CA205, option="slurm_sbatch_args", detail=f"{item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _venv_activate(venv: str) -> str | None:
    """The activate script the Slurm tasks source: the given venv (folder or script), else the running one."""
    if venv:
        return os.path.abspath(os.path.join(venv, "bin", "activate") if os.path.isdir(venv) else venv)
    if sys.prefix != sys.base_prefix and os.path.isfile(os.path.join(sys.prefix, "bin", "activate")):
        return os.path.join(sys.prefix, "bin", "activate")
    return None


def _slurm_executor(pipeline: list[Any], *, tasks: int, logging_dir: str, options: ExecutionOptions) -> Any:
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        pipeline=pipeline, tasks=tasks, logging_dir=logging_dir, skip_completed=True,
        workers=options.workers if options.workers > 0 else -1,
        partition=options.slurm_partition, time=options.slurm_time, cpus_per_task=options.cpus_per_task,
        mem_per_cpu_gb=options.mem_per_cpu_gb, max_array_size=options.slurm_array_size,
        sbatch_args=parse_sbatch_args(options.slurm_sbatch_args), venv_path=_venv_activate(options.slurm_venv),
        job_name=options.slurm_job_name,
        qos="",  # datatrove's default "normal" does not exist on every cluster: pass qos=... in sbatch args
    )


@contextlib.contextmanager
def _no_new_folders(path: str) -> Iterator[None]:
    """Remove the empty folders up to ``path`` that the body created (datatrove makes the Slurm log folder
    while it renders the sbatch options; a dry run must leave nothing behind)."""
    path = os.path.abspath(path)
    missing = []
    p = path
    while not os.path.exists(p):
        missing.append(p)
        p = os.path.dirname(p)
    try:
        yield
    finally:
        for p in missing:  # deepest first
            with contextlib.suppress(OSError):
                os.rmdir(p)


def sbatch_script(pipeline: list[Any], *, tasks: int, logging_dir: str, options: ExecutionOptions) -> str | None:
    """The sbatch script a Slurm run would submit, rendered by datatrove's own executor; writes nothing.

    Returns None when every task already completed (nothing would be submitted). When there are more
    tasks than ``slurm_array_size``, datatrove submits this script several times, one array after the other.
    """
    executor = _slurm_executor(pipeline, tasks=tasks, logging_dir=logging_dir, options=options)
    ranks = executor.get_incomplete_ranks(range(tasks))
    if not ranks:
        return None
    jobs = math.ceil(len(ranks) / executor.tasks_per_job)
    max_array = min(jobs, executor.max_array_size) if executor.max_array_size != -1 else jobs
    with _no_new_folders(executor.slurm_logs_folder):
        sbatch_args = executor.get_sbatch_args(max_array)
    # the command line datatrove's launch_job puts in the script
    srun_args = " ".join(f"--{k}={v}" for k, v in executor.srun_args.items()) if executor.srun_args else ""
    pickled = executor.logging_dir.resolve_paths("executor.pik")
    run = (f"srun {srun_args} -l -n {executor.nodes_per_task} launch_pickled_pipeline {pickled}"
           if executor.with_srun else f"launch_pickled_pipeline {pickled}")
    return executor.get_launch_file_contents(sbatch_args, run)  # type: ignore[no-any-return]


def _active_slurm_job(logging_dir: str) -> str | None:
    """The job id of an earlier submission that Slurm still lists (queued or running), else None."""
    record = join(logging_dir, SLURM_JOB_RECORD)
    if not exists(record) or not shutil.which("squeue"):
        return None
    job = str(json.loads(read_text(record)).get("job_id", ""))
    if not job:
        return None
    r = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i"], capture_output=True, text=True, check=False)
    return job if r.returncode == 0 and r.stdout.strip() else None


# --- Ray ---------------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise AuditError(Errors.CA205, option="executor",
                         detail="--executor ray needs the 'ray' package: pip install 'corpus-audit[ray]'") from e
    return ray


@contextlib.contextmanager
def ray_cluster(options: ExecutionOptions, *, verbose: bool = False) -> Iterator[None]:
    """Connect to ``options.ray_address``, or start a local Ray cluster for the run (shut down afterwards).

    An already initialised Ray session (``ray.init()`` by the caller) is used as it is.
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}
    try:
        if options.ray_address:
            ray.init(address=options.ray_address, **kwargs)
        else:
            ray.init(include_dashboard=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise AuditError(Errors.CA205, option="ray_address", detail=(
            f"cannot {'join the Ray cluster at ' + options.ray_address if options.ray_address else 'start a local Ray cluster'}"
            f" ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); check the address and that "
            "`ray status` works there")) from e
    if not options.ray_address:
        _check_ray_fits(ray, options)  # a local cluster does not grow: a task too big would wait forever
    try:
        yield
    finally:
        ray.shutdown()


def _check_ray_fits(ray: Any, options: ExecutionOptions) -> None:
    need_mem = options.mem_per_cpu_gb * options.cpus_per_task * 1024**3
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= options.cpus_per_task and r.get("memory", 0) >= need_mem for r in nodes):
        return
    biggest = max(nodes, key=lambda r: r.get("CPU", 0), default={})
    ray.shutdown()
    raise AuditError(Errors.CA205, option="cpus_per_task/mem_per_cpu_gb", detail=(
        f"a task asks for {options.cpus_per_task} CPU(s) and {need_mem / 1024**3:.0f} GB, but the local Ray "
        f"cluster has {biggest.get('CPU', 0):.0f} CPU(s) and {biggest.get('memory', 0) / 1024**3:.1f} GB; "
        "lower --cpus-per-task or --mem-per-cpu-gb"))


def _ray_executor(pipeline: list[Any], *, tasks: int, logging_dir: str, options: ExecutionOptions) -> Any:
    _import_ray()
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=options.workers_for(tasks),
                               logging_dir=logging_dir, skip_completed=True, cpus_per_task=options.cpus_per_task,
                               mem_per_cpu_gb=options.mem_per_cpu_gb)


# --- any executor ------------------------------------------------------------------------------


def make_executor(pipeline: list[Any], *, tasks: int, logging_dir: str, options: ExecutionOptions,
                  verbose: bool = False) -> Any:
    """datatrove's executor for ``options.executor``, set up to skip tasks completed in an earlier run."""
    if options.executor == "local":
        return local_executor(verbose, pipeline=pipeline, tasks=tasks, workers=options.workers_for(tasks),
                              logging_dir=logging_dir, skip_completed=True)
    if options.executor == "ray":
        _console_logging(verbose)
        return _ray_executor(pipeline, tasks=tasks, logging_dir=logging_dir, options=options)
    if options.executor == "slurm":
        return _slurm_executor(pipeline, tasks=tasks, logging_dir=logging_dir, options=options)
    raise AuditError(Errors.CA205, option="executor", detail=f"{options.executor!r} is not one of {', '.join(EXECUTORS)}")


def run_pipeline(pipeline: list[Any], *, tasks: int, logging_dir: str, options: ExecutionOptions,
                 verbose: bool = False, before_check: Callable[[], None] | None = None) -> PipelineRun:
    """Run ``pipeline`` as ``tasks`` tasks on ``options.executor``; raise CA501 naming the incomplete tasks.

    Tasks completed by an earlier run are skipped. On Slurm the tasks are submitted as a job array and
    the call returns at once with :attr:`PipelineRun.submitted` set (nothing is checked then); calling it
    again after the job finished checks the tasks, and re-submits only the incomplete ones.
    ``before_check`` runs after the tasks and before the check (to raise a more precise error first).

    Example (emit's wiring)::

        run = run_pipeline([EmitStep(config)], tasks=len(files), logging_dir=f"{work}/logs",
                           options=ExecutionOptions(executor="local", workers=workers), verbose=verbose,
                           before_check=lambda: _raise_task_errors(work))
    """
    executor = make_executor(pipeline, tasks=tasks, logging_dir=logging_dir, options=options, verbose=verbose)
    run = PipelineRun(options.executor, tasks, logging_dir)
    failure: BaseException | None = None
    if options.executor == "slurm":
        forget_listings(logging_dir)
        if executor.get_incomplete_ranks(range(tasks)):
            active = _active_slurm_job(logging_dir)
            if active:
                n = len(executor.get_incomplete_ranks(range(tasks)))
                raise AuditError(Errors.CA501, n=n, logs=logging_dir, detail=(
                    f"Slurm job {active} of an earlier run is still queued or running (squeue -j {active}); "
                    "wait until it has finished"))
            executor.run()  # writes the pickled executor and the script, and calls sbatch
            run.submitted = str(executor.job_id)
            atomic_write_text(join(logging_dir, SLURM_JOB_RECORD), json.dumps({"job_id": run.submitted}))
            return run
    else:
        with ray_cluster(options, verbose=verbose) if options.executor == "ray" else contextlib.nullcontext():
            try:
                executor.run()
            except Exception as e:  # a task raised: reported below with the incomplete tasks
                failure = e
    if before_check is not None:
        before_check()
    check_tasks(executor, tasks=tasks, logging_dir=logging_dir, failure=failure)
    return run


def check_tasks(executor: Any, *, tasks: int, logging_dir: str, failure: BaseException | None = None) -> None:
    """Raise CA501 naming the tasks without a completion marker, with the first error found."""
    forget_listings(logging_dir)  # workers in other processes or on other nodes wrote the markers
    incomplete = executor.get_incomplete_ranks(range(tasks), skip_completed=True)
    if not incomplete and failure is None:
        return
    detail = ", ".join(str(r) for r in incomplete[:20]) + (", ..." if len(incomplete) > 20 else "") or "unknown"
    if failure is not None:
        detail += f" (first error: {type(failure).__name__}: {failure})"
    elif incomplete:
        last = _last_log_line(logging_dir, incomplete[0])
        if last:
            detail += f" (task {incomplete[0]}: {last})"
    raise AuditError(Errors.CA501, n=len(incomplete) or "some", detail=detail, logs=logging_dir)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _last_log_line(logging_dir: str, rank: int) -> str:
    """The last line of a task's log, where datatrove's traceback ends with the exception."""
    try:
        text = read_text(join(logging_dir, "logs", f"task_{rank:05d}.log"))
    except (OSError, ValueError):
        return ""
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""
