"""Train a fastText classifier over the five labels, quantise it, and write its model card.

Training is deterministic for a given seed and data (one thread, fixed shuffling), so ``make train``
rebuilds the bundled model with the same metrics.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus_audit.classifier import Classifier, file_sha256
from corpus_audit.errors import AuditError, Errors
from corpus_audit.features import FEATURES_VERSION, FeatureTagger, model_input
from corpus_audit.labels import LABELS
from corpus_audit.text import NORMALISE_VERSION
from corpus_audit.train.dataset import Example, split
from corpus_audit.train.metrics import confusion, per_label


@dataclass
class TrainParams:
    """fastText hyper-parameters and the split; the defaults are what the bundled model uses."""

    epoch: int = 10
    lr: float = 0.3
    dim: int = 64
    word_ngrams: int = 2
    min_count: int = 2
    minn: int = 0
    maxn: int = 0
    bucket: int = 500_000
    loss: str = "softmax"
    valid_share: float = 0.15
    seed: int = 0
    quantize: bool = True
    quant_dsub: int = 2  # dimensions per sub-vector of the product quantiser: more is smaller and faster to score
    autotune_seconds: int = 0
    features: bool = True  # prefix rule-pack feature tokens (see corpus_audit.features)
    rules_dir: str | None = None  # rule packs for the features (default: the bundled packs)
    refit_all: bool = True  # after measuring on the validation split, ship a model fitted on all documents
    crops: int = 3  # extra training excerpts per document, each a contiguous share of its words
    crop_share: float = 0.5
    crop_min_words: int = 120
    crop_pairs: bool = True  # also crop halves of contrastive pairs (measured better on real text, see add_crops)
    extra: dict[str, Any] = field(default_factory=dict)


def add_crops(examples: list[Example], *, n: int, share: float, min_words: int, seed: int,
              crop_pairs: bool = True) -> list[Example]:
    """Add ``n`` contiguous excerpts (``share`` of the words) of every document of at least ``min_words``.

    Real text often reaches the classifier as an excerpt from the middle of a longer work, and scan scores
    long documents in windows; training on excerpts teaches the label from partial evidence too.
    Halves of contrastive pairs share most of their words, so an excerpt of the shared part carries both
    labels; that looked like noise, but on the real dev set the model trained with those crops was
    better (misaligned_ai F1 0.83 against 0.74), so ``crop_pairs`` is on by default.
    """
    rng = random.Random(seed)
    out = list(examples)
    for ex in examples:
        words = ex.text.split()
        if n <= 0 or len(words) < min_words or (not crop_pairs and ex.group.startswith("pair:")):
            continue
        length = max(1, int(len(words) * share))
        for k in range(n):
            start = rng.randint(0, len(words) - length)
            out.append(Example(f"{ex.id}~crop{k}", " ".join(words[start:start + length]), ex.label, ex.hard, ex.genre,
                               ex.group))
    return out


def _write_fasttext_file(examples: list[Example], path: str, seed: int, tagger: FeatureTagger | None = None,
                         engine: Any = None) -> None:
    """One fastText line per example, built by :func:`~corpus_audit.features.model_input` as at inference."""
    rows = []
    for ex in examples:
        codes = {h.rule for h in engine.match(ex.text)} if engine is not None else set()
        rows.append(f"__label__{ex.label} {model_input(ex.text, tagger, codes)}")
    random.Random(seed).shuffle(rows)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(rows) + "\n")


def _predict_labels(clf: Classifier, examples: list[Example], engine: Any) -> list[str]:
    from corpus_audit.labels import decide

    out = []
    for ex in examples:
        hits = [h.as_dict() for h in engine.match(ex.text)] if engine is not None else []
        out.append(decide(clf.score(ex.text, hits).scores, hits, {}))  # the default threshold in both
    return out


def _fit_in_fresh_process(kwargs: dict[str, Any], *, quantize: bool, train_file: str, out_path: str,
                          dsub: int) -> dict[str, Any]:
    """Train in a new Python process (see :mod:`corpus_audit.train.fasttext_fit`), which makes training
    reproducible. A run that diverges to NaN is retried with half the learning rate, twice at most."""
    import subprocess
    import sys

    job = out_path + ".job.json"
    try:
        for attempt in range(3):
            with open(job, "w", encoding="utf-8") as fh:
                json.dump({"kwargs": kwargs, "quantize": quantize, "train_file": train_file, "out_path": out_path,
                           "dsub": dsub}, fh)
            proc = subprocess.run([sys.executable, "-m", "corpus_audit.train.fasttext_fit", job],
                                  capture_output=True, text=True)
            if proc.returncode != 0 or not os.path.exists(job + ".result"):
                raise RuntimeError(f"fastText training process failed: {proc.stderr[-2000:]}")
            with open(job + ".result", encoding="utf-8") as fh:
                result = json.load(fh)
            if result["ok"]:
                return dict(result["args"])
            if "NaN" not in result["error"] or attempt == 2:
                raise AuditError(Errors.CA405, detail=result["error"], lr=kwargs.get("lr"))
            kwargs = {**kwargs, "lr": kwargs["lr"] / 2}
    finally:
        for p in (job, job + ".result"):
            if os.path.exists(p):
                os.remove(p)
    raise AssertionError("unreachable")


def train_model(examples: list[Example], output: str, params: TrainParams | None = None) -> dict[str, Any]:
    """Train on ``examples`` (held-out share for validation), write ``output/model.ftz`` (or ``.bin``),
    ``metrics.json`` and ``model_card.md``; return the metrics."""
    p = params or TrainParams()
    train, valid = split(examples, valid_share=p.valid_share, seed=p.seed)
    os.makedirs(output, exist_ok=True)
    stale = os.path.join(output, "thresholds.json")  # tuned for the previous model, not this one
    if os.path.exists(stale):
        os.remove(stale)
    t0 = time.monotonic()
    tagger = engine = None
    rules_sha = ""
    if p.features:
        from corpus_audit.rules import RuleEngine, load_rules

        rules = load_rules(p.rules_dir)
        engine = RuleEngine(rules)
        tagger, rules_sha = FeatureTagger(rules, engine.matcher), rules.sha256
    with tempfile.TemporaryDirectory() as tmp:
        train_file = os.path.join(tmp, "train.txt")
        valid_file = os.path.join(tmp, "valid.txt")
        augmented = add_crops(train, n=p.crops, share=p.crop_share, min_words=p.crop_min_words, seed=p.seed,
                              crop_pairs=p.crop_pairs)
        _write_fasttext_file(augmented, train_file, p.seed, tagger, engine)
        _write_fasttext_file(valid, valid_file, p.seed, tagger, engine)
        kwargs: dict[str, Any] = dict(input=train_file, epoch=p.epoch, lr=p.lr, dim=p.dim, wordNgrams=p.word_ngrams,
                                      minCount=p.min_count, minn=p.minn, maxn=p.maxn, bucket=p.bucket, loss=p.loss,
                                      thread=1, seed=p.seed, verbose=0, **p.extra)
        if p.autotune_seconds > 0 and valid:
            kwargs = {k: v for k, v in kwargs.items() if k in ("input", "thread", "seed", "verbose", "loss")}
            kwargs.update(autotuneValidationFile=valid_file, autotuneDuration=p.autotune_seconds)
        name = "model.ftz" if p.quantize else "model.bin"
        path = os.path.join(output, name)
        used = _fit_in_fresh_process(kwargs, quantize=p.quantize, train_file=train_file, out_path=path,
                                     dsub=p.quant_dsub)
    seconds = time.monotonic() - t0
    with open(os.path.join(output, "model_config.json"), "w", encoding="utf-8") as fh:
        json.dump({"features": FEATURES_VERSION if p.features else "text", "rules_sha256": rules_sha,
                   "labels": list(LABELS), "normalise": NORMALISE_VERSION}, fh, indent=2, sort_keys=True)
    clf = Classifier(path, tagger=tagger)
    t1 = time.monotonic()
    pred = _predict_labels(clf, valid, engine) if valid else []
    per_doc_ms = (time.monotonic() - t1) / max(1, len(valid)) * 1000
    gold = [ex.label for ex in valid]
    if p.refit_all and valid:
        with tempfile.TemporaryDirectory() as tmp:
            all_file = os.path.join(tmp, "all.txt")
            everything = add_crops(train + valid, n=p.crops, share=p.crop_share, min_words=p.crop_min_words,
                                   seed=p.seed, crop_pairs=p.crop_pairs)
            _write_fasttext_file(everything, all_file, p.seed, tagger, engine)
            # the arguments the split model used (autotune's choice, or a learning rate halved after NaN)
            refit = {"input": all_file, "loss": p.loss, "thread": 1, "seed": p.seed, "verbose": 0, **used, **p.extra}
            _fit_in_fresh_process(refit, quantize=p.quantize, train_file=all_file, out_path=path, dsub=p.quant_dsub)
    metrics = {
        "model": os.path.basename(path),
        "sha256": file_sha256(path),
        "size_bytes": os.path.getsize(path),
        "train_documents": len(train),
        "shipped_model_fitted_on": "all documents" if p.refit_all and valid else "training split",
        "train_examples_with_crops": len(augmented),
        "valid_documents": len(valid),
        "train_by_label": {lab: sum(1 for e in train if e.label == lab) for lab in LABELS},
        "hard_negatives": sum(1 for e in examples if e.hard and e.label == "other"),
        "params": asdict(p) | {"fasttext_args": used},
        "train_seconds": round(seconds, 2),
        "valid_ms_per_document": round(per_doc_ms, 3),
        "validation": {lab: asdict(m) for lab, m in per_label(gold, pred).items()} if valid else {},
        "confusion": confusion(gold, pred) if valid else {},
    }
    with open(os.path.join(output, "metrics.json"), "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=2, sort_keys=True)
    return metrics


def write_model_card(output: str, metrics: dict[str, Any], data_paths: list[str],
                     dev_eval: dict[str, Any] | None = None) -> str:
    """Write ``output/model_card.md`` from the training metrics (and an optional evaluation on real text)."""
    p = metrics["params"]
    lines = [
        f"# corpus-audit classifier `{os.path.basename(os.path.abspath(output))}`",
        "",
        "A fastText classifier over the five labels of LABELS.md (`misaligned_ai`, `ai_risk_discourse`, "
        "`aligned_ai`, `ai_other`, `other`). `scan` runs it on documents that pass the cheap gate, in windows "
        "of words; a document takes the scores of its strongest window (its window with the highest `misaligned_ai` "
        "score when that reaches the threshold, else its window with the highest score for any AI label).",
        "",
        "## Data",
        f"- training data: {', '.join(data_paths)} (written by the project; no evaluation text)",
        f"- {metrics['train_documents']} training and {metrics['valid_documents']} validation documents "
        f"(deterministic hash split, share {p['valid_share']}, seed {p['seed']}); "
        f"{metrics['hard_negatives']} hard negatives; the validation figures below come from the model fitted on "
        f"the training split, the shipped model is then fitted on {metrics['shipped_model_fitted_on']}",
        "- training documents by label: " + ", ".join(f"{k} {v}" for k, v in metrics["train_by_label"].items()),
        "",
        "## Parameters",
        "- " + ", ".join(f"{k}={v}" for k, v in p["fasttext_args"].items()) + f", loss={p['loss']}, "
        f"quantised={p['quantize']}, one thread, seed {p['seed']}",
        "- input: `corpus_audit.features.model_input`, shared by training and inference: rule-pack feature tokens "
        "(lexicons present, reason codes fired) followed by the text normalised by `corpus_audit.text.normalise`; "
        f"crop augmentation: {p['crops']} excerpts of {p['crop_share']:.0%} of the words per document",
        "",
        "## Validation split (synthetic text of the same origin as the training data: an upper bound)",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for lab, m in metrics["validation"].items():
        lines.append(f"| {lab} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    if dev_eval:
        tuned = dev_eval.get("tuned_on")
        lines += ["", f"## Real text: {dev_eval['name']}",
                  f"Hand-labelled real text, never trained on. The `misaligned_ai` threshold "
                  f"({dev_eval.get('threshold', 'default')}) was tuned on {tuned}, so these figures are optimistic "
                  "for other text." if tuned else "Hand-labelled real text, never trained on.",
                  "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for lab, m in dev_eval["metrics"].items():
            lines.append(f"| {lab} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
        lines.append(f"\nGate recall by label: {dev_eval['gate_recall']}; `misaligned_ai` false-positive rate on "
                     f"`other` {dev_eval['misaligned_fp_rate_other']:.3f} (hard negatives "
                     f"{dev_eval['misaligned_fp_rate_hard']:.3f}).")
    lines += [
        "",
        "## Size and speed",
        f"- model file `{metrics['model']}`: {metrics['size_bytes'] / 1e6:.1f} MB, sha256 `{metrics['sha256'][:16]}…`",
        f"- training {metrics['train_seconds']:.1f} s; scoring {metrics['valid_ms_per_document']:.2f} ms per "
        "validation document (one core, chunked)",
        "",
        "## Limits",
        "- Trained on text written for the purpose; real text differs. Thresholds are tuned on real "
        "hand-labelled text with `corpus-audit find-threshold` and stored in `thresholds.json`.",
        "- English only. Non-English documents rarely pass the gate and are labelled `other`.",
    ]
    path = os.path.join(output, "model_card.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
