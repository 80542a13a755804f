"""The one interface every tokenizer backend implements.

Backends hold heavy native objects (a JVM, a MeCab dictionary, a Kiwi model) that cannot
be pickled, so a tokenizer pickles only its options and loads its backend lazily, once per
process. That is what lets ``tokenize_batch`` fan out over a process pool by default;
backends that run outside the GIL use threads instead (Okt's JVM) or their own pool (Kiwi).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
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
    # "thread" where the backend releases the GIL itself (a JVM, which also must not be forked).
    executor: str = "process"
    min_parallel: int = MIN_PARALLEL_TEXTS

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
        if not texts:
            return []
        # Several chunks per worker balance uneven texts; capped so progress moves and memory stays low.
        size = max(1, min(CHUNK_TEXTS, len(texts) // (workers * 4)))
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        results: list[list[str]] = []
        if workers == 1 or len(texts) < self.min_parallel:
            for chunk in _progress(chunks, progress, len(texts), self.name):
                results.extend(self._tokenize_many(chunk))
            return results
        pool: Executor
        if self.executor == "thread":
            _ = self.backend  # load once, before the threads race to
            pool = ThreadPoolExecutor(max_workers=workers)
        else:  # fork keeps start-up cheap; elsewhere spawn needs the caller's `if __name__ == "__main__"`
            context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context)
        with pool:
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
    if not sys.stderr.isatty():  # a log file: plain lines every 10 s, not a bar redrawn with \r
        from kortext.progress import ProgressLines

        lines, done = ProgressLines(10.0), 0
        for chunk in chunks:
            done += len(chunk)
            if lines.due():
                lines.say(f"tokenize[{name}] {done}/{total} texts")
            yield chunk
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="text", desc=f"tokenize[{name}]") as bar:
        for chunk in chunks:
            bar.update(len(chunk))
            yield chunk
