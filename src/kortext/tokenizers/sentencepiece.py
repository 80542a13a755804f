"""A subword tokenizer (sentencepiece unigram/BPE) trained on a training split.

Training on the training split only keeps the test split unseen; the model file is small
(a few hundred KB) and is what a checkpoint should carry next to the weights.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kortext.tokenizers.base import Tokenizer, TokenizerUnavailable, default_workers

MODEL_FILE = "spm.model"


def _spm() -> Any:
    try:
        import sentencepiece
    except ImportError as error:
        raise TokenizerUnavailable(
            "sentencepiece is not installed: pip install 'opennsml[korean]'"
        ) from error
    return sentencepiece


class SentencePieceTokenizer(Tokenizer):
    name = "sentencepiece"

    def __init__(self, model: str | Path) -> None:
        super().__init__()
        path = Path(model)
        if path.is_dir():
            path = path / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"no sentencepiece model at {path}; train one with SentencePieceTokenizer.train(texts, ...)"
            )
        self.model_path = path
        self.model_bytes = path.read_bytes()  # so that worker processes need not see the same disk

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        model_dir: str | Path,
        model_type: str = "unigram",
        character_coverage: float = 0.9995,
        threads: int | None = None,
    ) -> SentencePieceTokenizer:
        """Train on ``texts`` and write ``model_dir/spm.model`` (+ ``spm.vocab``)."""
        if vocab_size < 8:
            raise ValueError(f"vocab_size must be at least 8, got {vocab_size}")
        spm = _spm()
        sentences = [text for text in texts if text.strip()]
        if not sentences:
            raise ValueError("sentencepiece needs at least one non-empty training text")
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                num_threads=threads or default_workers(),
                hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary, not an error
                minloglevel=2,
            )
        except RuntimeError as error:  # e.g. fewer pieces than the corpus has distinct characters
            raise ValueError(f"sentencepiece training failed: {str(error).split('] ')[-1]}") from error
        folder = Path(model_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MODEL_FILE).write_bytes(model.getvalue())
        processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
        vocab = "".join(
            f"{processor.id_to_piece(i)}\t{processor.get_score(i)}\n" for i in range(len(processor))
        )
        (folder / "spm.vocab").write_text(vocab, encoding="utf-8")
        return cls(folder / MODEL_FILE)

    @classmethod
    def load(cls, model: str | Path) -> SentencePieceTokenizer:
        return cls(model)

    def _load(self) -> Any:
        return _spm().SentencePieceProcessor(model_proto=self.model_bytes)

    @property
    def vocab_size(self) -> int:
        return int(self.backend.get_piece_size())

    def tokenize(self, text: str) -> list[str]:
        return list(self.backend.encode(text, out_type=str))

    def _batch(self, texts: list[str], workers: int, progress: bool) -> list[list[str]]:
        """sentencepiece's own C++ threads: no pickling, no start-up cost."""
        if progress:
            return super()._batch(texts, 1, progress)
        return [list(pieces) for pieces in self.backend.encode(texts, out_type=str, num_threads=workers)]

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text))
