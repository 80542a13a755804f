"""Do CoNG sentence vectors help the rating and sentiment models? Measured off the platform.

Why this exists: ``--cong`` makes every submission load Kiwi's CoNG model (seconds), so it
must earn its place against the same TF-IDF model without it. This samples NSMC reviews
(``../shared/data/nsmc/reviews.tsv.gz``), splits them by movie (test movies are never
trained on, as in the 2018 final round), and scores on the same rows: the training-mean
reference, TF-IDF alone, CoNG sentence vectors alone, and TF-IDF + CoNG at a few scales of
the CoNG block. Regression is the 1-10 rating (MSE, isotonic-calibrated on a validation
tenth of train, as the mission does); binary is NSMC's 1-4 vs 9-10 (accuracy).

Run: ``nice -n 10 .venv/bin/python benchmarks/cong_sentences.py --train 40000 --test 10000``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from kortext.cong_vectors import CongSentenceFeatures
from kortext.models.linear import Task, TfidfLinear
from kortext.normalize import normalize

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nsmc" / "reviews.tsv.gz"


def reviews(path: Path, rows: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A seeded sample: texts, ratings, and whether the review's movie is a test movie."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        table = [r for r in csv.DictReader(handle, delimiter="\t") if r["review"].strip()]
    picked = np.random.default_rng(seed).choice(len(table), size=min(rows, len(table)), replace=False)
    chosen = [table[i] for i in sorted(picked)]
    texts = [normalize(r["review"]) for r in chosen]
    ratings = np.array([float(r["rating"]) for r in chosen])
    test = np.array([zlib.crc32(r["movie_id"].encode()) % 5 == 0 for r in chosen])  # a fifth of movies
    return texts, ratings, test


def score(task: Task, truth: np.ndarray, predicted: np.ndarray) -> float:
    if task == "binary":
        return float(np.mean((predicted >= 0.5) == truth))
    return float(np.mean((np.clip(predicted, 1, 10) - truth) ** 2))


def evaluate(
    task: Task, texts: list[str], y: np.ndarray, test: np.ndarray, scales: list[float]
) -> list[dict[str, Any]]:
    train = np.flatnonzero(~test)
    valid = train[np.random.default_rng(0).random(len(train)) < 0.1]
    fit = np.setdiff1d(train, valid)
    pick = lambda idx: [texts[i] for i in idx]  # noqa: E731
    rows: list[dict[str, Any]] = []
    mean = np.full(int(test.sum()), y[fit].mean())
    rows.append({"task": task, "model": "training mean", "test": score(task, y[test], mean)})
    for scale in [0.0, *scales]:
        started = time.perf_counter()
        model = TfidfLinear(task, cong=scale).fit(pick(fit), list(y[fit]))
        model.calibrate(pick(valid), list(y[valid]))
        name = "tfidf" if scale == 0 else f"tfidf + cong (scale {scale})"
        rows.append(
            {
                "task": task,
                "model": name,
                "test": score(task, y[test], model.predict(pick(np.flatnonzero(test)))),
                "valid": score(task, y[valid], model.predict(pick(valid))),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    started = time.perf_counter()
    features = CongSentenceFeatures()
    x_fit = features.fit_transform(pick(fit))
    head = LogisticRegression(C=1.0, max_iter=2000) if task == "binary" else Ridge(alpha=10.0)
    head.fit(x_fit, y[fit])
    out = head.predict_proba if task == "binary" else head.predict
    predicted = out(features.transform(pick(np.flatnonzero(test))))
    predicted = predicted[:, 1] if task == "binary" else predicted
    rows.append(
        {
            "task": task,
            "model": "cong alone (linear head)",
            "test": score(task, y[test], predicted),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    return rows


def textcnn_static(
    task: Task, texts: list[str], y: np.ndarray, test: np.ndarray, epochs: int
) -> list[dict[str, Any]]:
    """TextCNN with frozen word vectors over kiwi morphemes: word2vec trained on the training
    texts (the default) against CoNG's pretrained vectors (``--embeddings cong``)."""
    from kortext.pipeline import Options, make_pipeline

    train, held_out = np.flatnonzero(~test), np.flatnonzero(test)
    rows: list[dict[str, Any]] = []
    for source in ("", "cong"):
        started = time.perf_counter()
        options = Options(embeddings=source, tokenizer="kiwi", epochs=epochs, max_length=60, progress=False)
        pipeline = make_pipeline("textcnn-static", task, False, options)
        result = pipeline.fit([texts[i] for i in train], list(y[train]))
        predicted = pipeline.predict([texts[i] for i in held_out])
        rows.append(
            {
                "task": task, "model": f"textcnn-static, {source or 'word2vec on train'} vectors",
                "test": score(task, y[held_out], predicted), "valid": float(result["valid_score"]),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=40000, help="reviews to sample before the split")
    parser.add_argument("--scales", default="0.3,1", help="scales of the CoNG block to try")
    parser.add_argument("--tasks", default="regression,binary")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--textcnn-epochs", type=int, default=0,
        help="> 0: instead, textcnn-static with word2vec vs CoNG vectors, binary, this many epochs",
    )  # fmt: skip
    config = parser.parse_args()
    texts, ratings, test = reviews(DATA, config.train, config.seed)
    scales = [float(s) for s in config.scales.split(",") if s]
    results = []
    if config.textcnn_epochs:
        negative, positive = np.flatnonzero(ratings <= 4), np.flatnonzero(ratings >= 9)
        positive = np.random.default_rng(config.seed).permutation(positive)[: len(negative)]
        kept = np.sort(np.concatenate([negative, positive]))  # balanced, as NSMC is
        binary = (ratings[kept] >= 9).astype(float)
        found = textcnn_static("binary", [texts[i] for i in kept], binary, test[kept], config.textcnn_epochs)
        for row in found:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return
    for task in config.tasks.split(","):
        if task == "binary":
            keep = (ratings <= 4) | (ratings >= 9)
            kept = np.flatnonzero(keep)
            rows = evaluate(
                "binary", [texts[i] for i in kept], (ratings[kept] >= 9).astype(float), test[kept], scales
            )
        else:
            rows = evaluate("regression", texts, ratings, test, scales)
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        results += rows
    print(
        json.dumps(
            {"reviews": len(texts), "test_reviews": int(test.sum()), "results": results}, ensure_ascii=False
        )
    )


if __name__ == "__main__":
    main()
