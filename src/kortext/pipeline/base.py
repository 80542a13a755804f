"""The contract every model's pipeline keeps, and the one place that picks a pipeline by name.

A :class:`Pipeline` owns the parts all models share: the seeded validation split, the
score, the 2018 ``infer`` contract, and the checkpoint's ``pipeline.json``, from which
:meth:`Pipeline.load` rebuilds the right pipeline in a fresh process (a submission).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kortext.topics import mine_hard_negatives, topic_split
from kortext.training import ReportFn, set_seed, split_indices

Task = Literal["binary", "regression"]
NEURAL = (
    "mlp",
    "textcnn",
    "textcnn-static",
    "textcnn-nonstatic",
    "bigru",
    "bilstm",
    "siamese",
    "esim",
    "encoder",
)
PAIR_ONLY = ("siamese", "esim")
MODELS = ("tfidf", *NEURAL, "ensemble")
META = "pipeline.json"


@dataclass
class Options:
    """Hyper-parameters every model reads what it needs from (missions expose them as flags)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 3
    max_length: int = 100
    embed_dim: int = 128
    hidden: int = 128
    dropout: float = 0.3
    tokenizer: str = "char"
    subword_vocab: int = 8000  # sentencepiece: pieces to learn from the training split
    embeddings: str = ""  # textcnn-static/-nonstatic: a published shared resource of word vectors
    pretrained: str = ""  # encoder: shared resource or folder ("": the default one if published; "none")
    encoder_size: str = "small"  # encoder without pretrained weights: kortext.encoder.pretrain.SIZES
    seed: int = 1
    valid_fraction: float = 0.1
    valid_split: str = "random"  # "topic": pairs hold out whole topics (kortext.topics)
    cong_features: bool = False  # tfidf: CoNG pair alignment (kortext.cong) or sentence vectors
    hard_negatives: float = 0.0  # pairs: add this fraction of training rows of same-topic negatives
    max_train: int = 0  # 0: all rows; else a seeded sample of this many (bounded runs)
    max_steps: int = 0  # 0: no cap on optimizer steps
    pair_features: bool = True  # siamese/esim also see the hand-made pair similarities
    members: str = "tfidf,esim,siamese"  # for "ensemble"
    stack: bool = True  # ensemble: learn member weights on the validation split
    progress: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Options:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def split_pair(line: str) -> tuple[str, str]:
    first, _, second = line.partition("\t")
    return first, second


def split_pairs(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    pairs = [split_pair(line) for line in lines]
    return [a for a, _ in pairs], [b for _, b in pairs]


def check_model(model: str, pair: bool) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if model in PAIR_ONLY and not pair:
        raise ValueError(f"model {model!r} compares two texts; use it on a pair dataset such as kin")


class Pipeline(ABC):
    """fit → predict → save/load for one model on one task."""

    def __init__(self, model: str, task: Task, pair: bool, options: Options) -> None:
        check_model(model, pair)
        self.model_name = model
        self.task: Task = task
        self.pair = pair
        self.options = options
        self.label_range: tuple[float, float] = (0.0, 1.0)
        self.valid_predictions: np.ndarray | None = None

    # ----- the interface -----
    @abstractmethod
    def _fit(
        self, inputs: list[str], labels: np.ndarray, valid: np.ndarray, report: ReportFn | None
    ) -> None: ...

    @abstractmethod
    def _predict(self, inputs: list[str]) -> np.ndarray: ...

    @abstractmethod
    def _save(self, folder: Path) -> dict[str, Any]: ...

    @abstractmethod
    def _load(self, folder: Path, meta: dict[str, Any]) -> None: ...

    # ----- shared behaviour -----
    def split(self, inputs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The one seeded train/validation split every model of a run shares (ensembles rely on it)."""
        if self.options.valid_split == "topic" and self.pair:
            return topic_split(*split_pairs(inputs), self.options.valid_fraction, self.options.seed)
        train, valid = split_indices(len(inputs), self.options.valid_fraction, self.options.seed)
        return train.numpy(), valid.numpy()

    def _with_hard_negatives(
        self, inputs: list[str], y: np.ndarray, train: np.ndarray
    ) -> tuple[list[str], np.ndarray]:
        """Training rows plus mined same-topic negatives, appended so validation indices hold."""
        if not (self.pair and self.task == "binary" and self.options.hard_negatives > 0):
            return inputs, y
        first, second = split_pairs([inputs[i] for i in train])
        count = int(len(train) * self.options.hard_negatives)
        extra = mine_hard_negatives(first, second, y[train], count, self.options.seed)
        return inputs + extra, np.concatenate([y, np.zeros(len(extra))])

    def fit(
        self, inputs: Sequence[str], labels: Sequence[float], report: ReportFn | None = None
    ) -> dict[str, float]:
        """Trains on all but the validation split; returns the validation score (accuracy or MSE)."""
        inputs, y = list(inputs), np.asarray(labels, dtype=np.float64)
        if len(inputs) != len(y):
            raise ValueError(f"{len(inputs)} inputs but {len(y)} labels")
        if len(inputs) < 2:
            raise ValueError("need at least 2 labelled examples to train and validate")
        if self.options.max_train and len(inputs) > self.options.max_train:
            keep = np.random.default_rng(self.options.seed).permutation(len(inputs))[: self.options.max_train]
            inputs, y = [inputs[i] for i in sorted(keep)], y[sorted(keep)]
        self.label_range = (float(y.min()), float(y.max()))
        set_seed(self.options.seed)
        train, valid = self.split(inputs)
        rows = len(inputs)
        self._fit(*self._with_hard_negatives(inputs, y, train), valid, report)
        self.valid_predictions = self._predict([inputs[i] for i in valid])
        result = {"valid_score": self.score(self.valid_predictions, y[valid]), "train_rows": float(rows)}
        if self.pair and self.task == "binary":
            result.update(self.same_topic_scores([inputs[i] for i in valid], y[valid]))
        return result

    def same_topic_scores(self, inputs: list[str], labels: np.ndarray) -> dict[str, float]:
        """How the model does on two different questions of one topic, mined from ``inputs``.

        The validation rows' own negatives are mostly off-topic; these probe whether the
        model tells a same-topic question apart from a paraphrase (all are labelled 0).
        """
        probes = mine_hard_negatives(*split_pairs(inputs), labels, len(inputs), self.options.seed + 1)
        if not probes:
            return {}
        p_same = self._predict(probes)
        return {
            "same_topic_accuracy": float((p_same <= 0.5).mean()),
            "same_topic_p_same": float(p_same.mean()),
        }

    def score(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        if self.task == "binary":
            return float(((predictions > 0.5) == (labels > 0.5)).mean())
        return float(((predictions - labels) ** 2).mean())

    def predict(self, inputs: Sequence[str]) -> np.ndarray:
        """Probability of label 1 (binary) or the rating, clipped to the training range (regression)."""
        values = self._predict(list(inputs))
        if self.task == "regression":
            values = np.clip(values, *self.label_range)
        return values

    def infer(self, inputs: Sequence[str]) -> list[tuple[float, float]]:
        """The 2018 infer contract: ``(probability or 0, prediction)`` per input."""
        values = self.predict(inputs)
        if self.task == "binary":
            return [(float(p), int(p > 0.5)) for p in values]
        return [(0.0, float(v)) for v in values]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": self.model_name,
            "task": self.task,
            "pair": self.pair,
            "options": asdict(self.options),
            "label_range": list(self.label_range),
            **self._save(folder),
        }
        (folder / META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @staticmethod
    def load(folder: str | Path) -> Pipeline:
        folder = Path(folder)
        if not (folder / META).is_file():
            raise FileNotFoundError(f"{folder} holds no {META}; was it written by Pipeline.save?")
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        pipeline = make_pipeline(
            meta["model"], meta["task"], meta["pair"], Options.from_dict(meta["options"])
        )
        pipeline.label_range = (float(meta["label_range"][0]), float(meta["label_range"][1]))
        pipeline._load(folder, meta)
        return pipeline


def make_pipeline(model: str, task: Task, pair: bool, options: Options | None = None) -> Pipeline:
    """The pipeline of ``model``; its modules are imported here because each subclasses Pipeline."""
    from kortext.pipeline.encoder import EncoderPipeline
    from kortext.pipeline.ensemble import EnsemblePipeline
    from kortext.pipeline.linear import LinearPipeline
    from kortext.pipeline.neural import NeuralPipeline

    options = options or Options()
    check_model(model, pair)
    if model == "tfidf":
        return LinearPipeline(model, task, pair, options)
    if model == "ensemble":
        return EnsemblePipeline(model, task, pair, options)
    if model == "encoder":
        return EncoderPipeline(model, task, pair, options)
    return NeuralPipeline(model, task, pair, options)
