"""Where the bundled rule packs, default model and demo corpus live, in a checkout or an installed wheel."""

from __future__ import annotations

import os
from importlib import resources

_HERE = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT = os.path.dirname(_HERE)
DEFAULT_MODEL_NAME = "ca-default"


def _package_dir(package: str, checkout_dir: str) -> str:
    """The folder of a data package when installed, else the matching folder of the source checkout."""
    try:
        path = str(resources.files(package))
        if os.path.isdir(path):
            return path
    except (ModuleNotFoundError, TypeError):
        pass
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
