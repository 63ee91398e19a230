"""Emit: filtered, reweighted, tagged and upsampled shards from the original inputs and a scan's annotations.

Modules: :mod:`~corpus_audit.emit.policy` (policy format and the pure per-document decision),
:mod:`~corpus_audit.emit.plan` (join to annotations, upsampling plan), :mod:`~corpus_audit.emit.step`
(the datatrove task per input file), :mod:`~corpus_audit.emit.shards` (output writers),
:mod:`~corpus_audit.emit.emitter` (the :func:`emit` function and ``manifest.json``), and
:mod:`~corpus_audit.emit.cli` (the ``corpus-audit emit`` command).

Example::

    from corpus_audit.emit import emit, load_policy
    result = emit(["shards/"], "audit/", "clean/", load_policy("policy.yml"))
    print(result.record["documents"], result.record["upsample"])
"""

from __future__ import annotations

from typing import Any

from corpus_audit.emit.policy import Decision, Policy, Rule, UpsampleSource, decide, load_policy, sample_copies

_LAZY = {"emit": "corpus_audit.emit.emitter", "EmitResult": "corpus_audit.emit.emitter"}


def __getattr__(name: str) -> Any:
    """Import the writing side (datatrove, pyarrow) only when it is used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["Decision", "EmitResult", "Policy", "Rule", "UpsampleSource", "decide", "emit", "load_policy",
           "sample_copies"]
