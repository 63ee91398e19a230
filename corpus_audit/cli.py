"""The ``corpus-audit`` command line: each command is a thin shell over a library function."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from corpus_audit import __version__
from corpus_audit.config import ScanConfig, click_options
from corpus_audit.errors import AuditError

EXIT_REJECTED = 3


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print an :class:`AuditError` as ``error CA123: message`` and exit 2, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditError as e:
            click.echo(f"error {e}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corpus-audit")
def main() -> None:
    """Audit LLM pretraining corpora for narratives of evil, self-preserving AI.

    \b
    corpus-audit scan shards/ -o audit/      annotate every document
    corpus-audit explain "some text"          label one text, with reasons
    corpus-audit rules check                  validate the rule packs
    """


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="output folder for annotations/, scan.json and rejected.jsonl")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with the same keys as the options (text_key, workers, ...)")
@click_options(ScanConfig)
@click.option("--allow-rejected", is_flag=True, help="exit 0 even when records were rejected or files quarantined")
@click.option("--overwrite", is_flag=True, help="replace a scan in OUTPUT made with other inputs or options")
@click.option("-q", "--quiet", is_flag=True, help="no progress display")
@click.option("-v", "--verbose", is_flag=True, help="show datatrove's task logs")
@user_errors
def scan(inputs: tuple[str, ...], output: str, config_file: str | None, allow_rejected: bool, overwrite: bool,
         quiet: bool, verbose: bool, **options: Any) -> None:
    """Annotate every document of INPUT... (files, folders or globs of jsonl[.gz|.zst], parquet, warc/wet).

    Writes one Parquet file of annotation rows per task under OUTPUT/annotations/ and a run record in
    OUTPUT/scan.json. Exits 3 when records were rejected or files quarantined (listed in
    OUTPUT/rejected.jsonl), unless --allow-rejected. Re-running the same command resumes.
    """
    from corpus_audit.scanner import scan as run_scan

    cfg = ScanConfig.build(config_file=config_file, **options)
    show = not quiet and sys.stderr.isatty()
    result = run_scan(list(inputs), output, cfg, overwrite=overwrite, progress=show, verbose=verbose)
    rec = result.record
    d = rec["documents"]
    click.echo(f"read {d['read']:,} documents from {rec['files']['read']} files: "
               f"{d['annotated']:,} annotated, {d['rejected']:,} rejected, {d['gated']:,} passed the gate "
               f"({rec['seconds']:.1f}s)")
    click.echo("labels: " + ", ".join(f"{k} {v:,}" for k, v in rec["labels"].items()))
    click.echo(f"annotations: {output}/annotations/   run record: {output}/scan.json")
    if not result.clean:
        q = rec["files"]["quarantined"]
        click.echo(f"warning: {d['rejected']:,} records rejected and {q} files quarantined; "
                   f"see {output}/rejected.jsonl", err=True)
        for entry in result.quarantined[:10]:
            click.echo(f"  quarantined {entry['code']}: {entry['message']}", err=True)
        if not allow_rejected:
            sys.exit(EXIT_REJECTED)


@main.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="print {label, scores, rule_hits, evidence} as JSON")
@click.option("--model", default=None, help="fastText model (default: the bundled model)")
@click.option("--rules", "rules_dir", default=None, help="folder of rule packs (default: the bundled packs)")
@user_errors
def explain(text: str, as_json: bool, model: str | None, rules_dir: str | None) -> None:
    """Label one TEXT (or - to read standard input) and show scores, rule hits and the evidence span."""
    from corpus_audit.explain import explain as run_explain

    if text == "-":
        text = sys.stdin.read()
    out = run_explain(text, model=model, rules_dir=rules_dir)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"label: {out['label']}   (gate {'passed' if out['gated'] else 'did not pass'})")
    for k, v in sorted(out["scores"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {k:18s} {v:.3f}")
    for h in out["rule_hits"]:
        click.echo(f"  rule {h['rule']} ({h['category']}) at {h['start']}-{h['end']}: "
                   f"{text[h['start']:h['end']][:100]!r}")
    if out["evidence"]:
        ev = out["evidence"]
        click.echo(f"evidence {ev['start']}-{ev['end']}: {ev['text'][:300]!r}")


@main.group()
def rules() -> None:
    """Validate and evaluate rule packs."""


@rules.command("check")
@click.option("--rules", "rules_dir", default=None, help="folder of rule packs (default: the bundled packs)")
@user_errors
def rules_check(rules_dir: str | None) -> None:
    """Load and validate every rule pack; print what they define."""
    from corpus_audit.rules import load_rules

    rs = load_rules(rules_dir)
    n_terms = sum(len(lex.terms) + len(lex.cased) for lex in rs.lexicons.values())
    click.echo(f"ok: {len(rs.files)} pack(s), {len(rs.lexicons)} lexicons, {n_terms} terms, "
               f"{len(rs.patterns)} patterns; sha256 {rs.sha256[:16]}")
    for p in rs.patterns:
        click.echo(f"  {p.code:24s} -> {p.category:18s} {p.description}")


if __name__ == "__main__":  # pragma: no cover
    main()
