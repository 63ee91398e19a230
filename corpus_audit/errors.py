"""The catalogue of user-facing errors: every error has a code, says what happened and what to do.

Codes are stable; users search for them. Ranges: CA1xx input, CA2xx configuration and output,
CA3xx rule packs, CA4xx models, CA5xx execution, CA6xx reports, CA7xx emit.
"""

from __future__ import annotations

from enum import StrEnum


class Errors(StrEnum):
    """Message templates, formatted with keyword arguments by :class:`AuditError`."""

    # input
    CA101 = "no input files found for {inputs}; pass files, folders or globs of .jsonl[.gz|.zst], .parquet or .warc/.wet[.gz] files"
    CA102 = "{file} line {line}: malformed JSON ({detail}); fix or drop the line, or pass --allow-rejected to accept the loss"
    CA103 = "{file} line {line}: invalid UTF-8 at byte {detail}; re-encode the file as UTF-8 or pass --allow-rejected"
    CA104 = "{file}: compressed stream is truncated or corrupt after {line} records ({detail}); re-download or re-compress the file"
    CA105 = "{file} line {line}: no text field '{key}' ({detail}); pass --text-key with the right field name"
    CA106 = "{file} line {line}: document of {detail} bytes exceeds --max-doc-bytes; raise the limit or split the document"
    CA107 = "{file}: not a readable parquet file ({detail}); re-export it or remove it from the inputs"
    CA108 = "{file}: unknown format; name files .jsonl, .jsonl.gz, .jsonl.zst, .parquet, .warc[.gz] or .wet[.gz]"
    CA109 = "{file} needs the '{module}' package to read it ({detail}); install it with: pip install {package}"
    CA110 = "{file} record {line}: unreadable WARC record ({detail}); the rest of the file was quarantined"
    CA111 = "{file} line {line}: JSON line is not an object ({detail}); each line must be one JSON object"
    # configuration and output
    CA201 = "config file {path}: {detail}"
    CA202 = "unknown config key '{key}' in {path}; known keys: {known}"
    CA203 = "output folder {path} holds a scan made with a different configuration ({detail}); use a new -o folder or pass --overwrite"
    CA204 = "--source {value!r} is not understood; use 'folder', 'field:<metadata key>' or 'name:<fixed name>'"
    CA205 = "option {option}: {detail}"
    # rule packs
    CA301 = "rule pack {file}: {detail} (at key '{key}'); fix the pack and run `corpus-audit rules check`"
    CA302 = "no rule packs found in {path}; pass --rules with a folder of *.yml packs"
    CA303 = "rule pack {file} is not valid YAML: {detail}"
    # models
    CA401 = "model file {path} not found; pass --model with a .ftz/.bin model or run `make train`"
    CA402 = "model {path} cannot be loaded by fastText ({detail}); retrain it with `corpus-audit train`"
    CA403 = "model {path} lacks labels {detail}; it must be trained on the five labels of LABELS.md"
    CA404 = "training data {path}: {detail}"
    CA406 = "model {path} was trained with rule-pack features; load it with the rule packs (Annotator, or pass a FeatureTagger)"
    CA407 = ("model {path} was trained on text normalised by version {trained} of corpus_audit.text.normalise; this "
             "version normalises with {current}, so the model would see different input: retrain it with `corpus-audit train`")
    CA405 = "fastText training diverged ({detail}) even at learning rate {lr}; lower --lr or --epoch, or add data"
    # execution
    CA501 = "{n} task(s) did not complete: {detail}; see the logs under {logs} and re-run the same command to resume"
    # reports
    CA601 = "no annotation files under {path}/annotations; run `corpus-audit scan INPUT... -o {path}` first, or pass the folder a scan wrote"
    CA602 = "annotations under {path} cannot be reported on ({detail}); re-run `corpus-audit scan` to rewrite them"
    CA603 = "cannot measure per-label rates with --eval: {detail}; report without --eval, or restore the scan's model"
    CA604 = "per-label rates from {path} are unusable ({detail}); fix or remove the file, or pass --eval with labelled JSONL"
    CA605 = "cannot write the report to {path} ({detail}); pass -o with a writable folder"
    # emit (CA7xx)
    CA701 = "policy {file}: {detail}; fix the file (examples/policy.yml shows the format)"
    CA702 = "policy {file}: {detail} (at key '{key}'); fix the policy (examples/policy.yml shows the format)"
    CA703 = "no usable scan under {path} ({detail}); run `corpus-audit scan INPUT... -o {path}` first and pass that folder to --annotations"
    CA704 = "annotations in {path} do not belong to these inputs: {detail}; pass the same INPUT... that `corpus-audit scan` was given, or scan these inputs into a new folder"
    CA705 = "{file} row {row}: {detail}; the file changed since it was scanned: scan it again and emit with the new annotations"
    CA706 = "upsample source {path} (policy {file}): {detail}"
    CA707 = "output folder {path} {detail}"
    CA708 = "annotations in {path} come from a scan with --limit {limit}, which annotated only part of the inputs; scan again without --limit"


class AuditError(Exception):
    """An error meant for the user: a code from :class:`Errors` and the formatted message."""

    def __init__(self, code: Errors, **kwargs: object) -> None:
        self.code = code.name
        self.fields = kwargs
        try:
            message = code.value.format(**kwargs)
        except (KeyError, IndexError):  # a missing field must not hide the error itself
            message = f"{code.value} {kwargs}"
        self.message = message
        super().__init__(f"{self.code}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        # picklable, so an error raised in a worker process (multiprocess, Ray) reaches the caller intact
        return (_rebuild, (self.code, self.fields))


def _rebuild(code: str, fields: dict[str, object]) -> AuditError:
    return AuditError(Errors[code], **fields)
