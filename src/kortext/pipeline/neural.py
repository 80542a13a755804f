"""The PyTorch pipelines: text to token ids (and pair features), a network per model name,
training through :func:`kortext.training.fit`, and what a checkpoint must hold to predict."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from torch import nn

from kortext.models import ESIM, CharMLP, RNNClassifier, RNNEncoder, SiameseClassifier, TextCNN
from kortext.models.linear import PairVectorizer
from kortext.models.textcnn import Mode
from kortext.pipeline.base import PAIR_ONLY, Options, Pipeline, Task, split_pair, split_pairs
from kortext.training import ReportFn, TrainConfig, fit, predict
from kortext.vocab import Vocab, pad_batch

SUBWORD = "sentencepiece"
SUBWORD_MODEL = "spm.model"


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

    def _vocabulary(self, corpus: list[list[str]]) -> Vocab:
        """The training texts' tokens (a pretrained model brings its own instead)."""
        min_freq = 1 if self.options.tokenizer in ("char", "jamo") else 2
        return Vocab.build(corpus, min_freq=min_freq, max_size=50_000)

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
            self.vocab = self._vocabulary(corpus)
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
