"""The one interface every tokenizer backend implements.

Backends hold heavy native objects (a JVM, a MeCab dictionary, a Kiwi model) that cannot
be pickled, so a tokenizer pickles only its options and loads its backend lazily, once per
process. That is what lets ``tokenize_batch`` fan out over a process pool by default.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

# Below this many texts a pool costs more to start than it saves.
MIN_PARALLEL_TEXTS = 2000
CHUNK_TEXTS = 1000


class TokenizerUnavailable(RuntimeError):
    """A backend's library or runtime (e.g. Java for Okt) is missing; the message says what to install."""


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Tokenizer(ABC):
    """``tokenize(text) -> tokens``; ``tokenize_batch`` keeps the order of its input."""

    name: str = "base"
    # "spawn" where the backend is unsafe to fork once loaded (a running JVM).
    start_method: str = "fork" if sys.platform == "linux" else "spawn"

    def __init__(self) -> None:
        self._backend: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_backend"] = None
        return state

    @property
    def backend(self) -> Any:
        if self._backend is None:
            self._backend = self._load()
        return self._backend

    def _load(self) -> Any:
        """The native object behind this tokenizer; None for pure-Python ones."""
        return None

    @abstractmethod
    def tokenize(self, text: str) -> list[str]: ...

    def _tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.tokenize(text) for text in texts]

    def tokenize_batch(
        self, texts: Sequence[str], workers: int | None = None, progress: bool = False
    ) -> list[list[str]]:
        """All cores by default (``workers=None``); ``workers=1`` stays in this process."""
        texts = list(texts)
        workers = default_workers() if workers is None else workers
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        return self._batch(texts, workers, progress)

    def _batch(self, texts: list[str], workers: int, progress: bool) -> list[list[str]]:
        chunks = [texts[i : i + CHUNK_TEXTS] for i in range(0, len(texts), CHUNK_TEXTS)]
        results: list[list[str]] = []
        if workers == 1 or len(texts) < MIN_PARALLEL_TEXTS:
            for chunk in _progress(chunks, progress, len(texts), self.name):
                results.extend(self._tokenize_many(chunk))
            return results
        context = multiprocessing.get_context(self.start_method)
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
            for tokens in _progress(pool.map(self._tokenize_many, chunks), progress, len(texts), self.name):
                results.extend(tokens)
        return results

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _progress(chunks: Any, enabled: bool, total: int, name: str) -> Iterator[list[Any]]:
    """Yield chunks while a tqdm bar counts texts (the chunks are lists of texts or of results)."""
    if not enabled:
        yield from chunks
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="text", desc=f"tokenize[{name}]") as bar:
        for chunk in chunks:
            bar.update(len(chunk))
            yield chunk
