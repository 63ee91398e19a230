"""Labelled datasets: reading JSON Lines with a `label` field, and a deterministic validation split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from corpus_audit.errors import AuditError, Errors
from corpus_audit.labels import LABELS
from corpus_audit.readers import expand_paths, iter_records


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    label: str
    hard: bool = False
    genre: str = ""
    group: str = ""  # examples of one group (the two halves of a contrastive pair) stay in one split


def load_examples(paths: list[str] | tuple[str, ...], *, text_key: str = "text",
                  label_key: str = "label") -> list[Example]:
    """Read labelled examples from JSON Lines files, folders or globs; every label must be one of LABELS."""
    out: list[Example] = []
    files = expand_paths(paths)
    if not files:
        raise AuditError(Errors.CA404, path=", ".join(paths), detail="no files found")
    for path in files:
        for i, rec in enumerate(iter_records(path, text_key=text_key)):
            label = rec.get(label_key)
            if label not in LABELS:
                raise AuditError(Errors.CA404, path=path,
                                 detail=f"record {i + 1} has label {label!r}; labels are {', '.join(LABELS)}")
            ex_id = str(rec.get("id", f"{path}#{i}"))
            group = f"pair:{ex_id.rsplit('-', 2)[0]}:{rec['pair']}" if rec.get("pair") else ex_id
            out.append(Example(ex_id, rec[text_key], label, bool(rec.get("hard")), str(rec.get("genre", "")), group))
    return out


def split(examples: list[Example], *, valid_share: float = 0.15, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Deterministic train/validation split by a hash of (seed, group), stratified by label in expectation.

    Both halves of a contrastive pair share a group, so a pair is never split across train and validation.
    """
    train, valid = [], []
    for ex in examples:
        h = int.from_bytes(hashlib.sha256(f"{seed}:{ex.group or ex.id}".encode()).digest()[:8], "big") / 2**64
        (valid if h < valid_share else train).append(ex)
    return train, valid
