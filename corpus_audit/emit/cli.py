"""The ``corpus-audit emit`` command: a thin shell over :func:`corpus_audit.emit.emitter.emit`.

Imports nothing heavy at module level, so ``corpus-audit --help`` stays fast.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import click

from corpus_audit.config import EXECUTION_KEYS, ScanConfig, click_options

# where the tasks run: the same flags as scan's (emit has its own --workers)
EXECUTION_FLAGS = set(EXECUTION_KEYS) - {"workers"}

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``"1048576"``, ``"512K"``, ``"256MiB"`` or ``"1G"`` (binary multiples).

    >>> parse_size("256MiB"), parse_size("1000")
    (268435456, 1000)
    """
    m = _SIZE.match(str(text))
    if not m or int(m.group(1)) < 1:
        raise click.BadParameter(f"{text!r} is not a size such as 1000000, 512K, 256MiB or 1G")
    return int(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower())


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The CLI's own error printing (``error CA123: ...``, exit 2), looked up when the command runs, so this
    module and ``corpus_audit.cli`` can import each other in either order."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from corpus_audit.cli import user_errors

        return user_errors(fn)(*args, **kwargs)

    return wrapper


def _n(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


@click.command(short_help="Write filtered, reweighted, tagged and upsampled shards under a policy.")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--annotations", required=True, type=click.Path(exists=True, file_okay=False),
              help="the folder `corpus-audit scan` wrote for these INPUTs (annotations/*.parquet, scan.json)")
@click.option("-o", "--output", required=True, help="output folder for the shards, manifest.json and .dropped.parquet")
@click.option("--policy", "policy_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="policy YAML: rules (drop, keep, weight, tag), upsample, mode, seed; see examples/policy.yml")
@click.option("--upsample-default", is_flag=True,
              help="add the bundled positive-AI documents at 1% of output words (only when the policy has no "
                   "upsample section of its own)")
@click.option("--max-shard-bytes", default="256MiB", show_default=True,
              help="start a new output shard before one passes this size (uncompressed; K, M, G suffixes)")
@click.option("--workers", type=int, default=0, show_default=True,
              help="input files written at once (0: one per CPU core)")
@click_options(ScanConfig, only=EXECUTION_FLAGS)
@click.option("--dry-run", is_flag=True, help="print what the policy would do and write nothing")
@click.option("--overwrite", is_flag=True, help="replace an emit in OUTPUT made with other inputs, annotations or policy")
@click.option("-q", "--quiet", is_flag=True, help="print only the summary line")
@click.option("-v", "--verbose", is_flag=True, help="show datatrove's task logs")
@_user_errors
def emit(inputs: tuple[str, ...], annotations: str, output: str, policy_file: str, upsample_default: bool,
         max_shard_bytes: str, workers: int, dry_run: bool, overwrite: bool, quiet: bool, verbose: bool,
         **execution: Any) -> None:
    """Write INPUT... (the files, folders or globs given to `scan`) to OUTPUT under a policy.

    Documents are joined to the scan's annotation rows (nothing is classified again), dropped, kept,
    reweighted or tagged by the first matching policy rule, positive documents are upsampled into the
    output, and shards are written in the input's format. OUTPUT/manifest.json accounts for every
    document (in = kept + dropped, out = kept with repeats + upsampled); OUTPUT/.dropped.parquet lists
    the dropped documents with their reasons. Re-running the same command resumes.
    """
    from corpus_audit.emit.emitter import emit as run_emit
    from corpus_audit.executors import ExecutionOptions

    options = ExecutionOptions(**{k: v for k, v in execution.items() if v is not None})
    if options.executor == "slurm" and not options.slurm_partition:
        from corpus_audit.errors import AuditError, Errors

        raise AuditError(Errors.CA205, option="slurm_partition", detail="needed with --executor slurm")
    result = run_emit(list(inputs), annotations, output, policy_file, upsample_default=upsample_default,
                      max_shard_bytes=parse_size(max_shard_bytes), workers=workers, dry_run=dry_run,
                      overwrite=overwrite, verbose=verbose, execution=options)
    rec = result.record
    if "submitted" in rec:
        click.echo(f"submitted {rec['executor']} job {rec['submitted']}; run the same command again after it has "
                   "finished to check every task and write the manifest")
        return
    d, w = rec["documents"], rec["words"]
    if not quiet:
        click.echo(f"policy {rec['policy']['path']} (mode {rec['mode']}, seed {rec['seed']})")
        for r in rec["rules"]:
            click.echo(f"  {r['describe']:58s} {r['documents']:>9,} documents {r['words']:>12,} words")
        for u in rec["upsample"]:
            target = f"target {u['target_share']:g}" if u["target_share"] is not None else f"repeat {u['repeat']}"
            click.echo(f"  upsample {u['path']}: {u['records']:,} records ({u['copies']:,} copies of "
                       f"{u['documents']:,} of {u['available']:,} documents), share {u['achieved_share']:.4f} "
                       f"({target})")
        click.echo(f"words: in {_n(w['in'])}, kept {_n(w['kept'])}, upsampled {_n(w['upsampled'])}, "
                   f"out {_n(w['out'])}")
    summary = (f"in {d['in']:,} documents = kept {d['kept']:,} + dropped {d['dropped']:,}; out {d['out']:,} "
               f"documents ({d['upsampled']:,} upsampled, {d['repeated']:,} repeats, {d['tagged']:,} tagged)")
    if dry_run:
        if not quiet:
            for i in rec["inputs"]:
                click.echo(f"  {i['path']} -> {output}/{i['output']}")
        click.echo(f"dry run, nothing written: would write {summary}")
        return
    if not quiet:
        click.echo(f"shards: {len(rec['outputs'])} under {output}/   dropped list: {output}/{rec['dropped_list']}")
        if d["rejected_at_scan"] or rec["files"]["quarantined"]:
            click.echo(f"note: {d['rejected_at_scan']:,} records rejected at scan time and "
                       f"{rec['files']['quarantined']} quarantined files were skipped (see the scan's rejected.jsonl)")
    click.echo(f"{summary}; manifest: {output}/manifest.json")
