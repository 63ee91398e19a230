"""Where the bundled rule packs, default model and demo corpus live, in a checkout or an installed wheel."""

from __future__ import annotations

import os
import stat

_HERE = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT = os.path.dirname(_HERE)
DEFAULT_MODEL_NAME = "ca-default"


def _package_dir(package: str, checkout_dir: str) -> str:
    """The folder of a data package in an installed wheel (``corpus_audit/_rules``), else the matching
    folder of the source checkout (``rules/``), which is also what an editable install sees."""
    installed = os.path.join(_HERE, package.rsplit(".", 1)[-1])
    if os.path.isdir(installed):
        return installed
    return os.path.join(_CHECKOUT, checkout_dir)


def default_rules_dir() -> str:
    """The bundled rule packs (``rules/`` of the repository, ``corpus_audit/_rules`` in a wheel)."""
    return _package_dir("corpus_audit._rules", "rules")


def models_dir() -> str:
    """The bundled models (``classifiers/`` of the repository, ``corpus_audit/_models`` in a wheel)."""
    return _package_dir("corpus_audit._models", "classifiers")


def default_model_path() -> str:
    return os.path.join(models_dir(), DEFAULT_MODEL_NAME, "model.ftz")


def demo_corpus_dir() -> str:
    return os.path.join(_HERE, "data", "demo")


def positive_corpus_dir() -> str:
    """The bundled positive-AI documents (JSON Lines with ``id`` and ``text``), the default upsampling source
    of ``corpus-audit emit --upsample-default``."""
    return os.path.join(_HERE, "data", "positive")


def demo_policy_path() -> str:
    """The emit policy of ``corpus-audit demo`` (package data beside the demo corpus)."""
    return os.path.join(_HERE, "data", "demo_policy.yml")


def file_version(path: str) -> tuple[int, int] | None:
    """The modification time (ns) and size of the regular file at ``path``, ``None`` when there is none: what
    tells a model rewritten in place (as ``train`` does when it refits) from the one loaded before."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if stat.S_ISREG(st.st_mode) else None


def cache_dir() -> str:
    """Where derived files that are slow to build are kept (compiled Hyperscan databases, projected models),
    named by a hash of what they are built from: ``$CORPUS_AUDIT_CACHE``, else ``~/.cache/corpus-audit``."""
    return os.environ.get("CORPUS_AUDIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "corpus-audit")


def touch_cached(path: str) -> None:
    """Marks a cached file as just used, for :func:`prune_cache` (by its modification time: access times
    are often not kept)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune_cache(prefix: str, suffix: str, *, keep: int) -> None:
    """Deletes all but the ``keep`` most recently used files of one kind (``prefix``...``suffix``) in
    :func:`cache_dir`, so the cache does not grow with every model or rule set ever loaded."""
    folder = cache_dir()
    try:
        paths = [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(suffix)]
        paths.sort(key=os.path.getmtime, reverse=True)
        for old in paths[keep:]:
            os.unlink(old)
    except OSError:  # another process pruned first, or a file we may not delete: leave it
        pass
