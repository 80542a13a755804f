"""From raw mission lines to predictions: tokenise, encode, train, predict, save, load.

A mission's ``main.py`` picks a model by name and hands this module its raw lines (a
review, or two questions separated by a tab) and labels. Everything a submission needs to
predict later (vocabulary, fitted TF-IDF vocabularies, label statistics, weights) is written
by ``save`` into the checkpoint folder, because a submission runs in a fresh directory that
has neither the training data nor anything computed during training.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import torch
from torch import nn

from kortext.models import ESIM, CharMLP, RNNClassifier, RNNEncoder, SiameseClassifier, TextCNN
from kortext.models.ensemble import Stacker, average
from kortext.models.linear import PairVectorizer, TfidfLinear, TfidfPairClassifier
from kortext.models.textcnn import Mode
from kortext.training import ReportFn, TrainConfig, fit, predict, set_seed, split_indices
from kortext.vocab import Vocab, pad_batch

Task = Literal["binary", "regression"]
NEURAL = ("mlp", "textcnn", "textcnn-static", "textcnn-nonstatic", "bigru", "bilstm", "siamese", "esim")
PAIR_ONLY = ("siamese", "esim")
MODELS = ("tfidf", *NEURAL, "ensemble")
META = "pipeline.json"
SUBWORD = "sentencepiece"
SUBWORD_MODEL = "spm.model"


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
    seed: int = 1
    valid_fraction: float = 0.1
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


def parse_checkpoints(text: str) -> list[tuple[str, str]]:
    """``"kin/3:best, kin/5:best"`` -> [("kin/3", "best"), ("kin/5", "best")]; names may hold ':'."""
    refs = []
    for item in (part.strip() for part in text.split(",")):
        session, _, checkpoint = item.partition(":")
        if not item or not session or not checkpoint:
            raise ValueError(f"{item!r} is not SESSION:CHECKPOINT (e.g. kin/3:best); see nsml model ls")
        refs.append((session, checkpoint))
    return refs


def average_checkpoints(refs: str, restore: Callable[[str, str], Pipeline]) -> EnsemblePipeline:
    """The average of ``"SESSION:CHECKPOINT,..."``; ``restore(session, checkpoint)`` brings one back
    (on the platform through ``nsml.load(checkpoint=..., session=...)``)."""
    return EnsemblePipeline.of(
        [restore(session, checkpoint) for session, checkpoint in parse_checkpoints(refs)]
    )


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
    def split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The one seeded train/validation split every model of a run shares (ensembles rely on it)."""
        train, valid = split_indices(n, self.options.valid_fraction, self.options.seed)
        return train.numpy(), valid.numpy()

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
        _, valid = self.split(len(inputs))
        self._fit(inputs, y, valid, report)
        self.valid_predictions = self._predict([inputs[i] for i in valid])
        return {"valid_score": self.score(self.valid_predictions, y[valid]), "train_rows": float(len(inputs))}

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
    options = options or Options()
    check_model(model, pair)
    if model == "tfidf":
        return LinearPipeline(model, task, pair, options)
    if model == "ensemble":
        return EnsemblePipeline(model, task, pair, options)
    return NeuralPipeline(model, task, pair, options)


class LinearPipeline(Pipeline):
    """TF-IDF + LogisticRegression/Ridge; pairs use :class:`TfidfPairClassifier`."""

    estimator: TfidfPairClassifier | TfidfLinear

    def _fit(self, inputs: list[str], labels: np.ndarray, valid: np.ndarray, report: ReportFn | None) -> None:
        train = np.setdiff1d(np.arange(len(inputs)), valid)
        rows = [inputs[i] for i in train]
        if self.pair:
            estimator = TfidfPairClassifier()
            estimator.fit(*split_pairs(rows), labels[train].astype(int))
            self.estimator = estimator
        else:
            self.estimator = TfidfLinear(self.task).fit(rows, labels[train])
            # the validation rows calibrate ratings (valid_score is then measured after it)
            self.estimator.calibrate([inputs[i] for i in valid], labels[valid])
        if report is not None:
            report(0, {"epoch": 0.0})

    def _predict(self, inputs: list[str]) -> np.ndarray:
        if isinstance(self.estimator, TfidfPairClassifier):
            return self.estimator.predict(*split_pairs(inputs))
        return self.estimator.predict(inputs)

    def _save(self, folder: Path) -> dict[str, Any]:
        joblib.dump(self.estimator, folder / "tfidf.joblib")
        return {}

    def _load(self, folder: Path, meta: dict[str, Any]) -> None:
        self.estimator = joblib.load(folder / "tfidf.joblib")


class NeuralPipeline(Pipeline):
    """A PyTorch model over token ids, trained by :func:`kortext.training.fit`."""

    def __init__(self, model: str, task: Task, pair: bool, options: Options) -> None:
        super().__init__(model, task, pair, options)
        self.vocab: Vocab | None = None
        self.target_stats = (0.0, 1.0)
        self.pair_vectorizer: PairVectorizer | None = None
        self.network: nn.Module | None = None
        self._tokenizer: Any = None

    @property
    def uses_pair_features(self) -> bool:
        return self.pair and self.options.pair_features and self.model_name in PAIR_ONLY

    # ----- text to tensors -----
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from kortext.tokenizers import get_tokenizer

            if self.options.tokenizer == SUBWORD:
                raise RuntimeError("the sentencepiece model is learnt by fit or restored by load first")
            self._tokenizer = get_tokenizer(self.options.tokenizer)
        return self._tokenizer

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        workers = None if len(texts) >= 20000 else 1
        return self.tokenizer().tokenize_batch(
            texts, workers=workers, progress=self.options.progress and workers is None
        )

    def _ids(self, texts: list[str]) -> torch.Tensor:
        if self.model_name == "mlp":  # the 2018 baseline's own 251-symbol jamo index
            from kortext.jamo import encode_baseline

            width = self.options.max_length // 2 if self.pair else self.options.max_length
            return torch.tensor([encode_baseline(t, width) for t in texts], dtype=torch.long)
        assert self.vocab is not None
        return pad_batch([self.vocab.encode(t) for t in self._tokens(texts)], self.options.max_length)

    def tensors(self, inputs: list[str]) -> list[torch.Tensor]:
        if not self.pair:
            return [self._ids(inputs)]
        first, second = split_pairs(inputs)
        if self.model_name == "mlp":  # 2018 style: both questions side by side in one sequence
            return [torch.cat([self._ids(first), self._ids(second)], dim=1)]
        both = self._ids(first + second)  # one width for both sides, so a swapped pair stacks
        tensors = [both[: len(first)], both[len(first) :]]
        if self.uses_pair_features:
            assert self.pair_vectorizer is not None
            tensors.append(torch.tensor(self.pair_vectorizer.dense(first, second), dtype=torch.float32))
        return tensors

    # ----- the model -----
    def _embeddings(self, corpus: list[list[str]] | None) -> torch.Tensor | None:
        """Word vectors for the static/non-static TextCNN: the published ``--embeddings`` (e.g.
        trained once on all NSMC reviews), else word2vec (gensim) on the training texts."""
        if not self.model_name.startswith("textcnn-"):
            return None
        assert self.vocab is not None
        vectors = None
        if corpus is not None and self.options.embeddings:
            from kortext.embeddings import pretrained

            vectors = pretrained(self.options.embeddings)
            self.options = replace(self.options, embed_dim=int(vectors.vector_size))
        matrix = torch.zeros((len(self.vocab), self.options.embed_dim))
        if corpus is None:  # loading: the weights come from the checkpoint
            return matrix
        if vectors is None:
            from gensim.models import Word2Vec

            vectors = Word2Vec(
                corpus,
                vector_size=self.options.embed_dim,
                window=5,
                min_count=1,
                workers=1,
                seed=self.options.seed,
                epochs=5,
            ).wv
        found = 0
        for index, token in enumerate(self.vocab.itos):
            if token in vectors:
                matrix[index] = torch.from_numpy(np.array(vectors[token], dtype=np.float32))
                found += 1
        if self.options.embeddings and found == 0:
            raise ValueError(
                f"no word of the training texts is in embeddings {self.options.embeddings!r}; "
                f"were they made with --tokenizer {self.options.tokenizer}?"
            )
        return matrix

    def build(self, corpus: list[list[str]] | None = None) -> nn.Module:
        o = self.options
        vocab_size = 251 if self.model_name == "mlp" else len(self.vocab or [])
        extra = (
            len(self.pair_vectorizer.scaler.mean_) if self.uses_pair_features and self.pair_vectorizer else 0
        )
        name = self.model_name
        if name == "mlp":
            width = 2 * (o.max_length // 2) if self.pair else o.max_length
            return CharMLP(vocab_size, width, hidden=o.hidden * 2, dropout=o.dropout)
        if name == "esim":
            return ESIM(vocab_size, o.embed_dim, o.hidden, dropout=o.dropout, extra_features=extra)
        if name.startswith("textcnn"):
            modes: dict[str, Mode] = {
                "textcnn": "rand",
                "textcnn-static": "static",
                "textcnn-nonstatic": "non-static",
            }
            mode = modes[name]
            embeddings = self._embeddings(corpus)  # published vectors set the width
            cnn = TextCNN(vocab_size, self.options.embed_dim, dropout=0.5, mode=mode, embeddings=embeddings)
            return SiameseClassifier(cnn, hidden=o.hidden * 2, dropout=o.dropout) if self.pair else cnn
        cell = "gru" if name == "bigru" else "lstm"
        if self.pair:
            encoder = RNNEncoder(vocab_size, o.embed_dim, o.hidden, cell=cell, dropout=o.dropout)  # type: ignore[arg-type]
            return SiameseClassifier(encoder, hidden=o.hidden * 2, dropout=o.dropout, extra_features=extra)
        return RNNClassifier(vocab_size, dropout=o.dropout, embed_dim=o.embed_dim, hidden=o.hidden, cell=cell)

    def _fit(self, inputs: list[str], labels: np.ndarray, valid: np.ndarray, report: ReportFn | None) -> None:
        o = self.options
        train = np.setdiff1d(np.arange(len(inputs)), valid)
        texts = [inputs[i] for i in train]
        corpus: list[list[str]] | None = None
        if self.model_name != "mlp":
            pieces = [p for line in texts for p in split_pair(line)] if self.pair else texts
            if o.tokenizer == SUBWORD:
                self._tokenizer = _train_subwords(pieces, o.subword_vocab)
            corpus = self._tokens(pieces)
            min_freq = 1 if o.tokenizer in ("char", "jamo") else 2
            self.vocab = Vocab.build(corpus, min_freq=min_freq, max_size=50_000)
        if self.uses_pair_features:
            self.pair_vectorizer = PairVectorizer().fit(*split_pairs(texts))
        y = labels.astype(np.float64)
        if self.task == "regression":
            self.target_stats = (float(y[train].mean()), float(y[train].std() or 1.0))
        mean, std = self.target_stats
        target = torch.tensor((y - mean) / std, dtype=torch.float32)
        x_all = self.tensors(inputs)
        x_train, y_train = [x[train] for x in x_all], target[train]
        if self.pair and self.model_name != "mlp":  # a pair means the same either way round
            swapped = [x_train[1], x_train[0], *x_train[2:]]
            x_train = [torch.cat([a, b]) for a, b in zip(x_train, swapped, strict=True)]
            y_train = torch.cat([y_train, y_train])
        self.network = self.build(corpus)
        config = TrainConfig(
            task=self.task,
            epochs=o.epochs,
            batch_size=o.batch_size,
            lr=o.lr,
            patience=o.patience,
            seed=o.seed,
            progress=o.progress,
            max_steps=o.max_steps or None,
        )
        scaled = report
        if report is not None and self.task == "regression":  # report losses in rating units, not z-scores

            def scaled(epoch: int, metrics: dict[str, float]) -> None:
                report(epoch, {k: v * std**2 if k != "epoch" else v for k, v in metrics.items()})

        fit(self.network, x_train, y_train, config, scaled, valid=([x[valid] for x in x_all], target[valid]))

    def _predict(self, inputs: list[str]) -> np.ndarray:
        assert self.network is not None, "fit or load the pipeline first"
        if not inputs:
            return np.zeros(0)
        outputs = predict(self.network, self.tensors(inputs)).numpy().astype(np.float64)
        if self.task == "binary":
            return 1.0 / (1.0 + np.exp(-outputs))
        mean, std = self.target_stats
        return outputs * std + mean

    def _save(self, folder: Path) -> dict[str, Any]:
        assert self.network is not None
        torch.save(self.network.state_dict(), folder / "model.pt")
        if self.options.tokenizer == SUBWORD and self._tokenizer is not None:
            (folder / SUBWORD_MODEL).write_bytes(self._tokenizer.model_bytes)
        if self.pair_vectorizer is not None:
            joblib.dump(self.pair_vectorizer, folder / "pair_features.joblib")
        return {
            "vocab": self.vocab.to_dict() if self.vocab else None,
            "target_stats": list(self.target_stats),
        }

    def _load(self, folder: Path, meta: dict[str, Any]) -> None:
        self.vocab = Vocab.from_dict(meta["vocab"]) if meta.get("vocab") else None
        self.target_stats = (float(meta["target_stats"][0]), float(meta["target_stats"][1]))
        if (folder / "pair_features.joblib").is_file():
            self.pair_vectorizer = joblib.load(folder / "pair_features.joblib")
        if (folder / SUBWORD_MODEL).is_file():
            from kortext.tokenizers import SentencePieceTokenizer

            self._tokenizer = SentencePieceTokenizer(folder / SUBWORD_MODEL)
        self.network = self.build()
        self.network.load_state_dict(torch.load(folder / "model.pt", map_location="cpu"))
        self.network.eval()


def _train_subwords(texts: list[str], vocab_size: int) -> Any:
    """A sentencepiece model learnt from the training split only (validation rows excluded)."""
    import tempfile

    from kortext.tokenizers import SentencePieceTokenizer

    with tempfile.TemporaryDirectory(prefix="kortext-spm-") as folder:
        return SentencePieceTokenizer.train(texts, vocab_size, folder)  # keeps the model's bytes


class EnsemblePipeline(Pipeline):
    """Several members trained on the same split; averaged, or stacked on the validation rows.

    The members never train on the validation rows, so their predictions there are honest
    inputs for the stacker; the reported validation score of the stack is cross-validated.
    """

    def __init__(self, model: str, task: Task, pair: bool, options: Options) -> None:
        super().__init__(model, task, pair, options)
        names = [m.strip() for m in options.members.split(",") if m.strip()]
        for name in names:
            if name in ("ensemble",):
                raise ValueError("an ensemble cannot contain another ensemble")
            check_model(name, pair)
        if not names:
            raise ValueError("ensemble: give at least one member, e.g. --members tfidf,esim")
        self.members = [make_pipeline(name, task, pair, options) for name in names]
        self.stacker: Stacker | None = None

    @classmethod
    def of(cls, members: Sequence[Pipeline]) -> EnsemblePipeline:
        """An average of pipelines already trained, e.g. checkpoints of several sessions.

        No stacking: each member may have trained on rows that would judge the weights."""
        if not members:
            raise ValueError("an ensemble of checkpoints needs at least one checkpoint")
        first = members[0]
        for member in members:
            if (member.task, member.pair) != (first.task, first.pair):
                raise ValueError(
                    f"cannot average a {member.task} {member.model_name} with a {first.task} "
                    f"{first.model_name}: the checkpoints come from different tasks"
                )
            if isinstance(member, EnsemblePipeline):
                raise ValueError("an ensemble cannot contain another ensemble")
        names = ",".join(m.model_name for m in members)
        ensemble = cls("ensemble", first.task, first.pair, replace(first.options, members=names, stack=False))
        ensemble.members = list(members)
        ensemble.label_range = (
            min(m.label_range[0] for m in members),
            max(m.label_range[1] for m in members),
        )
        return ensemble

    def describe(self) -> str:
        return f"{len(self.members)} checkpoints ({', '.join(m.model_name for m in self.members)})"

    def _fit(self, inputs: list[str], labels: np.ndarray, valid: np.ndarray, report: ReportFn | None) -> None:
        predictions = []
        for number, member in enumerate(self.members):
            member._fit(inputs, labels, valid, report)
            predictions.append(member._predict([inputs[i] for i in valid]))
            if report is not None:
                report(number, {f"member_{member.model_name}": member.score(predictions[-1], labels[valid])})
        if self.options.stack and len(self.members) > 1 and len(valid) >= 20:
            self.stacker = Stacker(self.task).fit(predictions, labels[valid])

    def member_predictions(self, inputs: list[str]) -> list[np.ndarray]:
        return [member._predict(inputs) for member in self.members]

    def _predict(self, inputs: list[str]) -> np.ndarray:
        predictions = self.member_predictions(inputs)
        if self.stacker is not None:
            return self.stacker.predict(predictions)
        return average(predictions)

    def fit(
        self, inputs: Sequence[str], labels: Sequence[float], report: ReportFn | None = None
    ) -> dict[str, float]:
        result = super().fit(inputs, labels, report)
        if self.stacker is not None:  # the stack saw the validation rows: score it out of fold
            result["valid_score"] = self._cross_validated_stack(inputs, labels)
        return result

    def _cross_validated_stack(self, inputs: Sequence[str], labels: Sequence[float]) -> float:
        from sklearn.model_selection import KFold

        inputs, y = list(inputs), np.asarray(labels, dtype=np.float64)
        if self.options.max_train and len(inputs) > self.options.max_train:
            keep = sorted(
                np.random.default_rng(self.options.seed).permutation(len(inputs))[: self.options.max_train]
            )
            inputs, y = [inputs[i] for i in keep], y[keep]
        _, valid = self.split(len(inputs))
        predictions = self.member_predictions([inputs[i] for i in valid])
        out = np.zeros(len(valid))
        for fit_rows, held in KFold(5, shuffle=True, random_state=self.options.seed).split(valid):
            stacker = Stacker(self.task).fit([p[fit_rows] for p in predictions], y[valid][fit_rows])
            out[held] = stacker.predict([p[held] for p in predictions])
        return self.score(out, y[valid])

    def _save(self, folder: Path) -> dict[str, Any]:
        for number, member in enumerate(self.members):
            member.save(folder / f"member{number}")
        if self.stacker is not None:
            joblib.dump(self.stacker, folder / "stacker.joblib")
        return {"members": len(self.members)}

    def _load(self, folder: Path, meta: dict[str, Any]) -> None:
        self.members = [Pipeline.load(folder / f"member{n}") for n in range(int(meta["members"]))]
        stacked = folder / "stacker.joblib"
        self.stacker = joblib.load(stacked) if stacked.is_file() else None
