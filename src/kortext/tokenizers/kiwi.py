"""Kiwi (kiwipiepy): the default morphological analyser; pure C++, no JVM, multi-threaded."""

from __future__ import annotations

import functools
from typing import Any

from kortext.tokenizers.base import Tokenizer, TokenizerUnavailable, default_workers


@functools.lru_cache(maxsize=4)
def _shared_kiwi(workers: int, model_type: str | None) -> Any:
    """One model per process and configuration: loading takes seconds and ~100 MB."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as error:
        raise TokenizerUnavailable("kiwi needs kiwipiepy: pip install 'opennsml[korean]'") from error
    options: dict[str, Any] = {"num_workers": workers}
    if model_type:
        options["model_type"] = model_type
    return Kiwi(**options)


class KiwiTokenizer(Tokenizer):
    """Morphemes (``form``); ``with_tags=True`` gives ``form/TAG`` (e.g. ``영화/NNG``)."""

    name = "kiwi"

    def __init__(self, with_tags: bool = False, normalize_coda: bool = True, model_type: str | None = None):
        super().__init__()
        self.with_tags = with_tags
        self.normalize_coda = normalize_coda
        self.model_type = model_type
        self._workers = 0

    def _load(self) -> Any:
        # Threads are used only for batches; one instance sized for all cores serves both.
        self._workers = default_workers()
        return self._kiwi(self._workers)

    def _kiwi(self, workers: int) -> Any:
        return _shared_kiwi(workers, self.model_type)

    def _forms(self, tokens: Any) -> list[str]:
        if self.with_tags:
            return [f"{t.form}/{t.tag}" for t in tokens]
        return [t.form for t in tokens]

    def tokenize(self, text: str) -> list[str]:
        if not text.strip():
            return []
        return self._forms(self.backend.tokenize(text, normalize_coda=self.normalize_coda))

    def _batch(self, texts: list[str], workers: int, progress: bool) -> list[list[str]]:
        """Kiwi's own thread pool (it releases the GIL), not processes: one model in memory."""
        if workers == 1:
            return super()._batch(texts, 1, progress)
        if self._backend is None or self._workers != workers:
            self._backend, self._workers = self._kiwi(workers), workers
        results: list[list[str]] = [[] for _ in texts]
        todo = [i for i, text in enumerate(texts) if text.strip()]
        analysed = self.backend.tokenize((texts[i] for i in todo), normalize_coda=self.normalize_coda)
        if progress:
            from kortext.progress import track

            analysed = track(analysed, len(todo), "tokenize[kiwi]", "text")
        for index, tokens in zip(todo, analysed, strict=True):
            results[index] = self._forms(tokens)
        return results
