"""Fit one fastText model in this process and exit: ``python -m corpus_audit.train.fasttext_fit JOB.json``.

fastText keeps state between trainings in one process (a second model trained with the same seed
differs from the first and can diverge to NaN), so the trainer runs every fit in a new process.
The job file holds the fastText arguments; the result (arguments used, or the error) is written
back to ``JOB.json.result``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def fit(kwargs: dict[str, Any], quantize: bool, train_file: str, out_path: str, dsub: int) -> dict[str, Any]:
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    model = fasttext.train_supervised(**kwargs)
    if quantize:
        model.quantize(input=train_file, qnorm=True, retrain=True, cutoff=200_000, dsub=dsub, thread=1, verbose=0)
    model.save_model(out_path)
    args = model.f.getArgs()
    return {k: getattr(args, k) for k in ("epoch", "lr", "dim", "wordNgrams", "minCount", "minn", "maxn", "bucket")
            if hasattr(args, k)}


def main(job_path: str) -> int:
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    try:
        result: dict[str, Any] = {"ok": True, "args": fit(job["kwargs"], job["quantize"], job["train_file"],
                                                           job["out_path"], job["dsub"])}
    except RuntimeError as e:  # fastText reports divergence as RuntimeError("Encountered NaN.")
        result = {"ok": False, "error": str(e)}
    with open(job_path + ".result", "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
