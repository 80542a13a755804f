"""Kin models on topics they never saw: topic-held-out validation, hard negatives, test.

For each model and hard-negative share this trains once on the real ``kin`` train split
(``../shared/data/question_pair``, built as ``nsml dataset build kin`` builds it) with whole
topics held out for validation, and reports: accuracy on those held-out topics; on the
standard test split; and, on both, accuracy and mean P(same) on mined pairs of two
different questions of one topic (all truly 0). Runs off the platform (the same
``kortext`` pipelines the mission runs), so a grid takes minutes, not a session each.

    python benchmarks/missions_topics.py --models tfidf --hard-negatives 0,0.25,0.5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from kortext.pipeline import Options, make_pipeline
from nsml.datasets.builders.kin import read_pairs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "question_pair"


def load(folder: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """The kin train and test splits, exactly as the builder writes them."""
    test = read_pairs(folder / "test.txt")
    in_test = {frozenset(pair.split("\t")) for pair, _ in test}
    train = [
        row
        for part in ("train.txt", "validation.txt")
        for row in read_pairs(folder / part)
        if frozenset(row[0].split("\t")) not in in_test
    ]
    return (
        [p for p, _ in train],
        np.array([float(y) for _, y in train]),
        [p for p, _ in test],
        np.array([float(y) for _, y in test]),
    )


def measure(model: str, hard: float, args: argparse.Namespace) -> dict[str, object]:
    train_x, train_y, test_x, test_y = load(args.data)
    options = Options(
        valid_split=args.split,
        hard_negatives=hard,
        members=args.members,
        epochs=args.epochs,
        progress=False,
        pair_features=True,
        cong_features=args.cong,
    )
    pipeline = make_pipeline(model, "binary", True, options)
    started = time.perf_counter()
    fitted = pipeline.fit(train_x, train_y.tolist())
    seconds = time.perf_counter() - started
    test_p = pipeline.predict(test_x)
    probe = pipeline.same_topic_scores(test_x, test_y)
    return {
        "model": model,
        "hard_negatives": hard,
        "valid_split": args.split,
        "cong": args.cong,
        "valid": round(fitted["valid_score"], 4),
        "valid_same_topic": round(fitted.get("same_topic_accuracy", float("nan")), 4),
        "valid_same_topic_p_same": round(fitted.get("same_topic_p_same", float("nan")), 4),
        "test": round(pipeline.score(test_p, test_y), 4),
        "test_same_topic": round(probe.get("same_topic_accuracy", float("nan")), 4),
        "test_same_topic_p_same": round(probe.get("same_topic_p_same", float("nan")), 4),
        "train_s": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", default="tfidf")
    parser.add_argument("--members", default="tfidf,siamese")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--split", default="topic", choices=("topic", "random"))
    parser.add_argument("--hard-negatives", default="0,0.25,0.5")
    parser.add_argument("--cong", action="store_true", help="add Kiwi CoNG pair features")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args()
    for model in args.models.split(","):
        for hard in (float(h) for h in args.hard_negatives.split(",")):
            row = measure(model, hard, args)
            print(json.dumps(row), flush=True)
            if args.out is not None:
                with args.out.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
