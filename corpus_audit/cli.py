"""The ``corpus-audit`` command line: each command is a thin shell over a library function."""

from __future__ import annotations

import functools
import json
import os
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
@click.option("-o", "--output", required=True,
              help="output folder (or fsspec URL, e.g. s3://bucket/audit) for annotations/, scan.json and rejected.jsonl")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with the same keys as the options (text_key, workers, executor, ...)")
@click_options(ScanConfig)
@click.option("--allow-rejected", is_flag=True, help="exit 0 even when records were rejected or files quarantined")
@click.option("--overwrite", is_flag=True, help="replace a scan in OUTPUT made with other inputs or options")
@click.option("--dry-run", is_flag=True, help="run and write nothing: print the effective configuration, or "
              "with --executor slurm the sbatch script that would be submitted")
@click.option("-q", "--quiet", is_flag=True, help="no progress display")
@click.option("-v", "--verbose", is_flag=True, help="show datatrove's task logs")
@user_errors
def scan(inputs: tuple[str, ...], output: str, config_file: str | None, allow_rejected: bool, overwrite: bool,
         dry_run: bool, quiet: bool, verbose: bool, **options: Any) -> None:
    """Annotate every document of INPUT... (files, folders or globs of jsonl[.gz|.zst], parquet, warc/wet;
    local paths or fsspec URLs such as s3://bucket/crawl/).

    Writes one Parquet file of annotation rows per task under OUTPUT/annotations/ and a run record in
    OUTPUT/scan.json. Exits 3 when records were rejected or files quarantined (listed in
    OUTPUT/rejected.jsonl), unless --allow-rejected, and 2 when a task did not complete (CA501).
    Re-running the same command resumes. With --executor slurm the command submits a job array and
    returns; run the same command again once the job has finished to check the tasks and write scan.json.
    """
    from corpus_audit.scanner import scan as run_scan

    cfg = ScanConfig.build(config_file=config_file, **options)
    show = not quiet and sys.stderr.isatty()
    result = run_scan(list(inputs), output, cfg, overwrite=overwrite, progress=show, verbose=verbose, dry_run=dry_run)
    rec = result.record
    if result.dry_run:
        if cfg.executor == "slurm":
            click.echo(result.script or "", nl=False)
            click.echo(f"dry run: {rec['config']['tasks']} task(s) over {rec['files']['inputs']} input file(s); "
                       + ("this script would be submitted with sbatch" if result.script
                          else "every task already completed, nothing would be submitted")
                       + "; nothing was written", err=True)
        else:
            click.echo(json.dumps(rec, indent=2, sort_keys=True))
        return
    if result.submitted:
        click.echo(f"submitted Slurm job {result.submitted}: {rec['config']['tasks']} task(s); follow it with "
                   f"`squeue -j {result.submitted}`, logs in {output.rstrip('/')}/logs/")
        click.echo("when it has finished, run the same command again: it checks every task completed, "
                   f"re-submits any that did not, and writes {output.rstrip('/')}/scan.json")
        return
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
    gate = "did not pass" if not out["gated"] else "passed" if out["named_agent"] else \
        "passed on machine vocabulary alone, no artificial agent named"
    click.echo(f"label: {out['label']}   (gate {gate})")
    for k, v in sorted(out["scores"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {k:18s} {v:.3f}")
    for h in out["rule_hits"]:
        click.echo(f"  rule {h['rule']} ({h['category']}) at {h['start']}-{h['end']}: "
                   f"{text[h['start']:h['end']][:100]!r}")
    if out["evidence"]:
        ev = out["evidence"]
        click.echo(f"evidence {ev['start']}-{ev['end']}: {ev['text'][:300]!r}")


def load_thresholds_file(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, "thresholds.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return dict(json.load(fh))


def _detectors(model: str | None, rules_dir: str | None, threshold: float | None = None) -> Any:
    from corpus_audit.annotate import DetectorConfig
    from corpus_audit.classifier import load_thresholds
    from corpus_audit.resources import default_model_path

    path = model or default_model_path()
    thresholds = load_thresholds(path)
    if threshold is not None:
        thresholds["misaligned_ai"] = threshold
    return DetectorConfig(model_path=path, rules_dir=rules_dir, thresholds=tuple(sorted(thresholds.items())))


def _unnamed_floor(cfg: Any) -> float:
    """The ``misaligned_ai`` floor for documents that name no artificial agent, as the detectors apply it."""
    from corpus_audit.labels import UNNAMED_DEFAULT, UNNAMED_KEY

    return float(dict(cfg.thresholds).get(UNNAMED_KEY, UNNAMED_DEFAULT))


@main.command()
@click.argument("data", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="model folder: model.ftz, metrics.json, model_card.md")
@click.option("--seed", default=0, show_default=True, help="seed for the split and fastText")
@click.option("--epoch", default=None, type=int, help="fastText epochs")
@click.option("--lr", default=None, type=float, help="fastText learning rate")
@click.option("--dim", default=None, type=int, help="fastText vector size")
@click.option("--word-ngrams", default=None, type=int, help="fastText word n-grams")
@click.option("--valid-share", default=None, type=float, help="share of documents held out for validation")
@click.option("--autotune", "autotune_seconds", default=0, show_default=True,
              help="seconds of fastText autotune on the validation split (0: use the given parameters)")
@click.option("--no-quantize", is_flag=True, help="keep the full .bin model instead of a quantised .ftz")
@click.option("--quant-dsub", default=None, type=int,
              help="dimensions per sub-vector of the quantiser (larger: smaller model, faster scoring)")
@click.option("--eval", "eval_path", default=None, help="real labelled JSONL to evaluate on for the model card")
@click.option("--tune", "tune_path", default=None,
              help="real labelled JSONL on which to tune the misaligned_ai threshold (written to thresholds.json)")
@click.option("--tune-precision", default=0.85, show_default=True, help="precision the tuned threshold must reach")
@user_errors
def train(data: tuple[str, ...], output: str, seed: int, epoch: int | None, lr: float | None, dim: int | None,
          word_ngrams: int | None, valid_share: float | None, autotune_seconds: int, no_quantize: bool,
          quant_dsub: int | None,
          eval_path: str | None, tune_path: str | None, tune_precision: float) -> None:
    """Train the classifier on labelled JSONL DATA (files, folders, globs with `text` and `label`).

    With --tune, the misaligned_ai threshold is set to the lowest score that reaches --tune-precision on
    that file (most recall at that precision); --eval then reports the model with that threshold.
    """
    import dataclasses

    from corpus_audit.train.dataset import load_examples
    from corpus_audit.train.fasttext_train import TrainParams, train_model, write_model_card
    from corpus_audit.train.metrics import LabelMetrics, format_table

    given = {"epoch": epoch, "lr": lr, "dim": dim, "word_ngrams": word_ngrams, "valid_share": valid_share,
             "quant_dsub": quant_dsub}
    params = dataclasses.replace(TrainParams(), seed=seed, quantize=not no_quantize,
                                 autotune_seconds=autotune_seconds, **{k: v for k, v in given.items() if v is not None})
    examples = load_examples(list(data))
    click.echo(f"training on {len(examples)} documents from {', '.join(data)}")
    metrics = train_model(examples, output, params)
    model_path = os.path.join(output, metrics["model"])
    if tune_path:
        from corpus_audit.train.evaluate import annotate_examples, find_threshold

        cfg = _detectors(model_path, None)
        rows = annotate_examples(load_examples([tune_path]), cfg)
        res = find_threshold(rows, "misaligned_ai", target_precision=tune_precision, unnamed_floor=_unnamed_floor(cfg))
        if res["threshold"] is None:
            click.echo(f"warning: no threshold reaches precision {tune_precision} on {tune_path}; keeping 0.5", err=True)
        else:
            with open(os.path.join(output, "thresholds.json"), "w", encoding="utf-8") as fh:
                json.dump({"misaligned_ai": res["threshold"], "tuned_on": os.path.basename(tune_path),
                           "target_precision": tune_precision}, fh, indent=2, sort_keys=True)
            click.echo(f"misaligned_ai threshold {res['threshold']} (precision {res['precision']:.3f}, "
                       f"recall {res['recall']:.3f} on {tune_path})")
    dev = None
    if eval_path:
        from corpus_audit.train.dataset import load_examples as load
        from corpus_audit.train.evaluate import evaluate

        ev = evaluate(load([eval_path]), _detectors(model_path, None))
        dev = ev.as_dict() | {"name": os.path.basename(eval_path)}
        tuned = load_thresholds_file(output)
        if tuned.get("tuned_on"):
            dev |= {"tuned_on": tuned["tuned_on"], "threshold": tuned.get("misaligned_ai")}
        click.echo(f"on {eval_path}:\n{format_table(ev.metrics)}")
    write_model_card(output, metrics, list(data), dev)
    click.echo("validation split:\n" + format_table({k: LabelMetrics(**v) for k, v in metrics["validation"].items()}))
    click.echo(f"wrote {output}/{metrics['model']} ({metrics['size_bytes'] / 1e6:.1f} MB), metrics.json, model_card.md")


@main.command("eval")
@click.argument("data", nargs=-1, required=True)
@click.option("--model", default=None, help="fastText model (default: the bundled model)")
@click.option("--rules", "rules_dir", default=None, help="folder of rule packs (default: the bundled packs)")
@click.option("--threshold", default=None, type=float, help="misaligned_ai threshold (default: the model's)")
@click.option("--json", "as_json", is_flag=True, help="print the evaluation as JSON")
@user_errors
def eval_cmd(data: tuple[str, ...], model: str | None, rules_dir: str | None, threshold: float | None,
             as_json: bool) -> None:
    """Per-label precision/recall/F1, confusion matrix and gate recall on labelled JSONL DATA."""
    from corpus_audit.train.dataset import load_examples
    from corpus_audit.train.evaluate import evaluate
    from corpus_audit.train.metrics import format_confusion, format_table

    ev = evaluate(load_examples(list(data)), _detectors(model, rules_dir, threshold))
    if as_json:
        click.echo(json.dumps(ev.as_dict(), indent=2))
        return
    click.echo(f"{ev.n} documents\n{format_table(ev.metrics)}\n\nconfusion (rows gold, columns predicted):\n"
               f"{format_confusion(ev.confusion)}\n")
    click.echo("gate recall: " + ", ".join(f"{k} {v:.3f}" for k, v in ev.gate_recall.items())
               + f"; gate pass rate {ev.gate_pass_rate:.3f}")
    click.echo(f"misaligned_ai false-positive rate on other {ev.misaligned_fp_rate_other:.3f} "
               f"(hard negatives {ev.misaligned_fp_rate_hard:.3f})")


@main.command("find-threshold")
@click.argument("data", nargs=-1, required=True)
@click.option("--label", default="misaligned_ai", show_default=True, help="label whose score is thresholded")
@click.option("--precision", "target_precision", type=float, default=None, help="target precision")
@click.option("--recall", "target_recall", type=float, default=None, help="target recall")
@click.option("--model", default=None, help="fastText model (default: the bundled model)")
@click.option("--write", is_flag=True, help="store the threshold in thresholds.json beside the model")
@user_errors
def find_threshold_cmd(data: tuple[str, ...], label: str, target_precision: float | None,
                       target_recall: float | None, model: str | None, write: bool) -> None:
    """The score threshold for LABEL that reaches a target precision or recall on labelled DATA."""
    from corpus_audit.errors import Errors
    from corpus_audit.train.dataset import load_examples
    from corpus_audit.train.evaluate import annotate_examples, find_threshold

    if (target_precision is None) == (target_recall is None):
        raise AuditError(Errors.CA205, option="--precision/--recall", detail="give exactly one of them")
    cfg = _detectors(model, None)
    rows = annotate_examples(load_examples(list(data)), cfg)
    res = find_threshold(rows, label, target_precision=target_precision, target_recall=target_recall,
                         unnamed_floor=_unnamed_floor(cfg))
    for c in res["curve"][:40]:
        click.echo(f"  threshold {c['threshold']:.4f}  precision {c['precision']:.3f}  recall {c['recall']:.3f}  "
                   f"flagged {c['flagged']}")
    if res["threshold"] is None:
        click.echo(f"no threshold reaches the target for {label}")
        sys.exit(1)
    click.echo(f"{label}: threshold {res['threshold']} gives precision {res['precision']:.3f}, "
               f"recall {res['recall']:.3f} ({res['flagged']} flagged)")
    if write:
        path = os.path.join(os.path.dirname(os.path.abspath(cfg.model_path)), "thresholds.json")
        current = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}
        current[label] = res["threshold"]
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(current, fh, indent=2, sort_keys=True)
        click.echo(f"wrote {path}")


@main.command()
@click.option("-o", "--output", default="reports/demo", show_default=True, help="where the demo writes its outputs")
@click.option("-q", "--quiet", is_flag=True, help="no progress display")
@user_errors
def demo(output: str, quiet: bool) -> None:
    """Run the chain on the bundled demo corpus: scan, the prevalence report, and emit with a demo policy."""
    from corpus_audit.config import ScanConfig
    from corpus_audit.report import build_report
    from corpus_audit.resources import demo_corpus_dir
    from corpus_audit.scanner import scan as run_scan

    corpus = demo_corpus_dir()
    scan_dir = os.path.join(output, "scan")
    click.echo(f"demo corpus: {corpus}")
    result = run_scan([corpus], scan_dir, ScanConfig(), overwrite=True, progress=not quiet and sys.stderr.isatty())
    d = result.record["documents"]
    click.echo(f"scan: {d['read']} documents, {d['gated']} passed the gate; labels "
               + ", ".join(f"{k} {v}" for k, v in result.record["labels"].items()))
    click.echo(f"annotations: {scan_dir}/annotations/   run record: {scan_dir}/scan.json")
    build_report(scan_dir, output=output)
    click.echo(f"report: {output}/index.html  {output}/report.md  {output}/report.json  {output}/audit.duckdb")
    from corpus_audit.emit import emit as run_emit
    from corpus_audit.resources import demo_policy_path

    emitted = run_emit([corpus], scan_dir, os.path.join(output, "emit"), demo_policy_path(), overwrite=True)
    m = emitted.record["documents"]
    click.echo(f"emit ({demo_policy_path()}): {m['in']} in, {m['kept']} kept, {m['dropped']} dropped, "
               f"{m['upsampled']} positive-AI documents added, {m['out']} out")
    click.echo(f"shards and manifest: {output}/emit/   manifest: {output}/emit/manifest.json")


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


@rules.command("eval")
@click.argument("data", nargs=-1, required=True)
@click.option("--rules", "rules_dir", default=None, help="folder of rule packs (default: the bundled packs)")
@click.option("--json", "as_json", is_flag=True, help="print the table as JSON")
@user_errors
def rules_eval(data: tuple[str, ...], rules_dir: str | None, as_json: bool) -> None:
    """Each rule's hits and precision against the gold labels of DATA (JSONL with `text` and `label`)."""
    from corpus_audit.rules import evaluate_rules, load_rules
    from corpus_audit.train.dataset import load_examples

    table = evaluate_rules(load_rules(rules_dir), load_examples(list(data)))
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    click.echo(f"{'rule':24s} {'category':18s} {'docs':>5s} {'correct':>7s} {'precision':>9s} {'recall':>7s}")
    for r in table["rules"]:
        click.echo(f"{r['rule']:24s} {r['category']:18s} {r['documents']:5d} {r['correct']:7d} "
                   f"{r['precision']:9.3f} {r['recall']:7.3f}")
    g = table["gate"]
    click.echo(f"gate: passes {g['pass_rate']:.3f} of documents; recall " +
               ", ".join(f"{k} {v:.3f}" for k, v in g["recall"].items()))


from corpus_audit.report.cli import report as report_cmd  # noqa: E402  (light: imports click only)

main.add_command(report_cmd)

from corpus_audit.emit.cli import emit as emit_cmd  # noqa: E402  (light: imports click only)

main.add_command(emit_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
