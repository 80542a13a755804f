"""Movie review mission (2018 NSML hackathon): predict a review's 1-10 rating (MSE).

The same script serves the binary NSMC dataset with ``--task binary`` (accuracy), and the
round datasets ``movie_phase1``/``movie_phase2``. Train with ``nsml run -d movie_review -e
main.py -a "--model tfidf"``, score with ``nsml submit SESSION best``. ``python main.py`` runs
locally on the 2018 debugging sample (``../shared/data/hackathon2018_sample/movie_review``) or
the demo dataset. Texts are normalised (masked movie/actor ids, repeated characters) first.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

import nsml
from kortext.normalize import normalize
from kortext.pipeline import MODELS, Options, Pipeline, average_checkpoints, make_pipeline

PAIR = False
SAMPLE = "movie_review"
DEMO = "demo_movie"
METRICS = {"regression": "mse", "binary": "accuracy"}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--task", default="regression", choices=tuple(METRICS), help="binary for nsmc")
    parser.add_argument("--model", default="tfidf", choices=MODELS)
    parser.add_argument("--members", default="tfidf,bigru", help="ensemble members, comma-separated")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=140)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--tokenizer", default="char")
    parser.add_argument(
        "--embeddings", default="",
        help="textcnn-static/-nonstatic: published word vectors (kortext pretrain --publish NAME)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-train", type=int, default=0, help="train on a sample of this many rows (0: all)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--ensemble-of", default="",
        help='average saved checkpoints instead of training, e.g. "kin/3:best,kin/5:best"',
    )  # fmt: skip
    return parser.parse_args()


def options(config: argparse.Namespace) -> Options:
    return Options(
        epochs=config.epochs,
        batch_size=config.batch,
        lr=config.lr,
        patience=config.patience,
        max_length=config.max_length,
        embed_dim=config.embed_dim,
        hidden=config.hidden,
        dropout=config.dropout,
        tokenizer=config.tokenizer,
        embeddings=config.embeddings,
        seed=config.seed,
        max_train=config.max_train,
        members=config.members,
        progress=True,  # a bar on a terminal, else a line per epoch and every 10 s (logs -f)
    )


def dataset_root() -> str:
    """The platform's dataset, else the 2018 sample beside the project, else the demo data."""
    if nsml.HAS_DATASET or nsml.IS_ON_NSML:
        return str(nsml.DATASET_PATH)
    sample = Path(__file__).resolve().parents[3] / "shared" / "data" / "hackathon2018_sample" / SAMPLE
    if sample.is_dir():
        return str(sample)
    from nsml.datasets.demo_catalog import DEMO_ROOT

    return str(DEMO_ROOT / DEMO)


def read(root: str) -> tuple[list[str], list[float]]:
    with open(os.path.join(root, "train", "train_data"), encoding="utf-8") as handle:
        lines = [normalize(line) for line in handle.read().splitlines()]
    with open(os.path.join(root, "train", "train_label"), encoding="utf-8") as handle:
        labels = [float(line) for line in handle.read().splitlines()]
    return lines, labels


def main() -> None:
    config = arguments()
    torch.set_num_threads(config.threads)
    state: dict[str, Pipeline] = {"pipeline": make_pipeline(config.model, config.task, PAIR, options(config))}

    def save(dir_name: str, **kwargs: object) -> None:
        state["pipeline"].save(dir_name)

    def load(dir_name: str, **kwargs: object) -> None:
        state["pipeline"] = Pipeline.load(dir_name)

    def infer(raw_data: list[str], **kwargs: object) -> list[tuple[float, float]]:
        return state["pipeline"].infer([normalize(text) for text in raw_data])

    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())

    if config.ensemble_of:  # checkpoints of the owner's sessions, averaged: no training

        def restore(session: str, checkpoint: str) -> Pipeline:
            nsml.load(checkpoint=checkpoint, session=session)
            return state["pipeline"]

        ensemble = state["pipeline"] = average_checkpoints(config.ensemble_of, restore)
        print(f"averaging {ensemble.describe()}: {config.ensemble_of}", flush=True)
        nsml.save("best")
        return

    metric = METRICS[config.task]
    lines, labels = read(dataset_root())
    if config.mode == "test_local":
        print(nsml.infer(lines[:10]))
        return
    print(f"training {config.model} ({config.task}) on {len(lines)} examples", flush=True)

    def report(epoch: int, metrics: dict[str, float]) -> None:
        shown = {k.replace("_", "__", 1): v for k, v in metrics.items() if k not in ("epoch", "valid_score")}
        if "valid_score" in metrics:
            shown[f"valid__{metric}"] = metrics["valid_score"]
        nsml.report(summary=True, scope=locals(), step=epoch, epoch=epoch, epoch_total=config.epochs, **shown)

    started = time.perf_counter()
    result = state["pipeline"].fit(lines, labels, report=report)
    seconds = time.perf_counter() - started
    print(f"validation {metric} {result['valid_score']:.4f} after {seconds:.1f} s", flush=True)
    nsml.report(
        summary=True,
        scope=locals(),
        step=config.epochs,
        **{
            f"valid__{metric}": result["valid_score"],
            "train__seconds": seconds,
            "train__rows": result["train_rows"],
        },
    )
    nsml.save("best")


if __name__ == "__main__":
    main()
