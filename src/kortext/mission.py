"""What every 2018 mission script does the same way: flags, nsml plumbing, training glue.

A mission's ``main.py`` declares a :class:`Mission` (its dataset, whether inputs are
question pairs, its tasks and metrics, its defaults) and calls :meth:`Mission.main`. The
script itself is still what the platform runs (``nsml run -d kin -e main.py``, and again with
``--pause 1 --mode test`` to serve a submission, or to fork and resume): only ``main.py`` is
shipped, and ``kortext`` comes from the platform's Python path, as every kortext import does.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import nsml
from kortext.pipeline import MODELS, Options, Pipeline, Task, average_checkpoints, make_pipeline


@dataclass(frozen=True)
class Mission:
    """One mission's choices; everything else is shared by all missions."""

    doc: str  # the script's docstring: its first line describes the command
    script: str  # the script's __file__: the 2018 sample is looked for beside the project
    sample: str  # folder of the 2018 debugging sample (hackathon2018_sample/SAMPLE)
    demo: str  # demo dataset shipped with OpenNSML, when the sample is not there
    pair: bool  # inputs are two questions separated by a tab
    metrics: dict[Task, str]  # task -> metric name; the first task is the default, >1 adds --task
    model: str  # default --model
    members: str  # default --members
    max_length: int  # default --max-length
    task_help: str | None = None  # help of --task
    clean: Callable[[str], str] | None = None  # applied to every text, in training and infer
    valid_split: str = "random"  # default --valid-split ("topic" holds out whole topics of pairs)

    def arguments(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        parser = argparse.ArgumentParser(description=self.doc.splitlines()[0])
        parser.add_argument("--mode", default="train")
        parser.add_argument("--pause", type=int, default=0)
        parser.add_argument("--iteration", default="0")
        if len(self.metrics) > 1:
            tasks = tuple(self.metrics)
            parser.add_argument("--task", default=tasks[0], choices=tasks, help=self.task_help)
        parser.add_argument("--model", default=self.model, choices=MODELS)
        parser.add_argument("--members", default=self.members, help="ensemble members, comma-separated")
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--batch", type=int, default=64)
        parser.add_argument("--lr", type=float, help="default: 1e-3; 2e-4 for --model encoder")
        parser.add_argument("--patience", type=int, default=3)
        parser.add_argument("--max-length", type=int, default=self.max_length)
        parser.add_argument("--embed-dim", type=int, default=128)
        parser.add_argument("--hidden", type=int, default=128)
        parser.add_argument("--dropout", type=float, default=0.3)
        parser.add_argument("--tokenizer", default="char")
        parser.add_argument(
            "--embeddings", default="",
            help="textcnn-static/-nonstatic: published word vectors (kortext pretrain --publish NAME), "
            "or cong: Kiwi's CoNG morpheme vectors (with --tokenizer kiwi)",
        )  # fmt: skip
        parser.add_argument(
            "--pretrained", default="",
            help="encoder: shared resource (or folder) of pretrained weights; default kortext-encoder "
            "when published; none: random initialisation",
        )  # fmt: skip
        parser.add_argument("--seed", type=int, default=1)
        if self.pair:
            parser.add_argument(
                "--valid-split", default=self.valid_split, choices=("topic", "random"),
                help="topic: validate on whole held-out topics (clusters of questions)",
            )  # fmt: skip
            parser.add_argument(
                "--hard-negatives", type=float, default=0.0,
                help="add this share of training rows of same-topic different-question pairs (label 0)",
            )  # fmt: skip
        parser.add_argument(
            "--cong", action="store_true",
            help="tfidf: Kiwi CoNG word alignment (pairs) or sentence vectors (single texts)",
        )  # fmt: skip
        parser.add_argument(
            "--max-train", type=int, default=0, help="train on a sample of this many rows (0: all)"
        )
        parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        parser.add_argument(
            "--ensemble-of", default="",
            help='average saved checkpoints instead of training, e.g. "kin/3:best,kin/5:best"',
        )  # fmt: skip
        config = parser.parse_args(argv)
        if config.cong and config.model not in ("tfidf", "ensemble"):
            parser.error(f"--cong feeds the tfidf model (alone or in an ensemble), not {config.model!r}")
        return config

    def task(self, config: argparse.Namespace) -> Task:
        """``--task``, or the mission's only task (then it has no such flag)."""
        return getattr(config, "task", next(iter(self.metrics)))

    def dataset_root(self) -> str:
        """The platform's dataset, else the 2018 sample beside the project, else the demo data."""
        if nsml.HAS_DATASET or nsml.IS_ON_NSML:
            return str(nsml.DATASET_PATH)
        sample = (
            Path(self.script).resolve().parents[3] / "shared" / "data" / "hackathon2018_sample" / self.sample
        )
        if sample.is_dir():
            return str(sample)
        from nsml.datasets.demo_catalog import DEMO_ROOT

        return str(DEMO_ROOT / self.demo)

    def cleaned(self, texts: list[str]) -> list[str]:
        return texts if self.clean is None else [self.clean(text) for text in texts]

    def read(self, root: str) -> tuple[list[str], list[float]]:
        with open(os.path.join(root, "train", "train_data"), encoding="utf-8") as handle:
            lines = self.cleaned(handle.read().splitlines())
        with open(os.path.join(root, "train", "train_label"), encoding="utf-8") as handle:
            labels = [float(line) for line in handle.read().splitlines()]
        return lines, labels

    def main(self, argv: Sequence[str] | None = None) -> None:
        """Train (or average checkpoints) and save ``best``; serve instead when the platform asks.

        The local names are what ``nsml exec`` sees through ``scope=locals()``, as in 2018 scripts.
        """
        config = self.arguments(argv)
        task = self.task(config)
        torch.set_num_threads(config.threads)
        state: dict[str, Pipeline] = {
            "pipeline": make_pipeline(config.model, task, self.pair, options(config))
        }

        def save(dir_name: str, **kwargs: object) -> None:
            state["pipeline"].save(dir_name)

        def load(dir_name: str, **kwargs: object) -> None:
            state["pipeline"] = Pipeline.load(dir_name)

        def infer(raw_data: list[str], **kwargs: object) -> list[tuple[float, float]]:
            return state["pipeline"].infer(self.cleaned(raw_data))

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

        metric = self.metrics[task]
        lines, labels = self.read(self.dataset_root())
        if config.mode == "test_local":
            print(nsml.infer(lines[:10]))
            return
        shown_task = f" ({task})" if len(self.metrics) > 1 else ""
        print(f"training {config.model}{shown_task} on {len(lines)} examples", flush=True)

        def report(epoch: int, metrics: dict[str, float]) -> None:
            shown = {
                k.replace("_", "__", 1): v for k, v in metrics.items() if k not in ("epoch", "valid_score")
            }
            if "valid_score" in metrics:
                shown[f"valid__{metric}"] = metrics["valid_score"]
            nsml.report(
                summary=True, scope=locals(), step=epoch, epoch=epoch, epoch_total=config.epochs, **shown
            )

        started = time.perf_counter()
        result = state["pipeline"].fit(lines, labels, report=report)
        seconds = time.perf_counter() - started
        split = getattr(config, "valid_split", "random")
        shown_split = " on held-out topics" if split == "topic" else ""
        print(
            f"validation {metric} {result['valid_score']:.4f}{shown_split} after {seconds:.1f} s", flush=True
        )
        same_topic = {k: v for k, v in result.items() if k.startswith("same_topic_")}
        if same_topic:
            accuracy, p_same = same_topic["same_topic_accuracy"], same_topic["same_topic_p_same"]
            print(
                f"same-topic different questions in validation: accuracy {accuracy:.4f}, "
                f"mean P(same) {p_same:.4f}",
                flush=True,
            )
        nsml.report(
            summary=True,
            scope=locals(),
            step=config.epochs,
            **{
                f"valid__{metric}": result["valid_score"],
                "train__seconds": seconds,
                "train__rows": result["train_rows"],
                **{f"valid__{k}": v for k, v in same_topic.items()},
            },
        )
        nsml.save("best")


def options(config: argparse.Namespace) -> Options:
    """The pipeline's hyper-parameters from the mission's flags."""
    return Options(
        epochs=config.epochs,
        batch_size=config.batch,
        lr=config.lr or (2e-4 if config.model == "encoder" else 1e-3),  # fine-tuning wants a gentle step
        patience=config.patience,
        max_length=config.max_length,
        embed_dim=config.embed_dim,
        hidden=config.hidden,
        dropout=config.dropout,
        tokenizer=config.tokenizer,
        embeddings=config.embeddings,
        pretrained=config.pretrained,
        seed=config.seed,
        max_train=config.max_train,
        valid_split=getattr(config, "valid_split", "random"),
        hard_negatives=getattr(config, "hard_negatives", 0.0),
        cong_features=getattr(config, "cong", False),
        members=config.members,
        progress=True,  # a bar on a terminal, else a line per epoch and every 10 s (logs -f)
    )
