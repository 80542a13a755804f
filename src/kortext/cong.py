"""Pretrained Korean word knowledge that is already installed: Kiwi's CoNG model.

``kiwipiepy-model`` ships CoNG, a contextual n-gram language model whose morpheme and
context embeddings Kiwi exposes as similarities (``morpheme_similarity``,
``context_similarity``). The Kin data is small (6.8k pairs), so a question that says 세탁기
where its paraphrase says 빨래 is a miss for every n-gram feature; CoNG knows they are close
(0.69). These features give a pair model that knowledge: each content morpheme's best match
in the other question, averaged both ways, and the two questions' context similarity.

Kiwi only exposes similarities, not the vectors themselves; :mod:`kortext.cong_vectors`
recovers the vectors from them (the ``cong`` source of ``kortext.embeddings``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

# nouns, verbs, adjectives, roots, foreign words and numbers: what a question is about
CONTENT_TAGS = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "MAG")
FEATURES = ("cong_align_ab", "cong_align_ba", "cong_align_min", "cong_context")


@lru_cache(maxsize=1)
def cong_kiwi() -> Any:
    """The CoNG-backed Kiwi (loading it takes seconds), or a clear error when it is missing."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as error:
        raise RuntimeError("CoNG features need kiwipiepy: pip install 'opennsml[korean]'") from error
    try:
        return Kiwi(model_type="cong")
    except Exception as error:  # kiwipiepy raises plain exceptions for a missing model file
        raise RuntimeError(
            f"Kiwi's CoNG model is not installed (pip install kiwipiepy-model): {error}"
        ) from None


def cong_available() -> bool:
    try:
        cong_kiwi()
    except RuntimeError:
        return False
    return True


class CongPairFeatures:
    """Soft word alignment and context similarity of two questions, under CoNG."""

    def __init__(self) -> None:
        self._similar: dict[tuple[str, str, str, str], float] = {}

    def __getstate__(self) -> dict[str, Any]:  # a checkpoint keeps no cache (Kiwi is reloaded)
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._similar = {}

    def morphemes(self, texts: Sequence[str]) -> list[list[tuple[str, str]]]:
        kiwi = cong_kiwi()
        return [
            [(t.form, t.tag) for t in tokens if t.tag.split("-")[0] in CONTENT_TAGS]
            for tokens in kiwi.tokenize(list(texts))
        ]

    def similarity(self, a: tuple[str, str], b: tuple[str, str]) -> float:
        if a == b:
            return 1.0
        key = (*a, *b) if a <= b else (*b, *a)
        if key not in self._similar:
            try:
                self._similar[key] = float(cong_kiwi().morpheme_similarity(a, b))
            except Exception:  # a morpheme CoNG has no embedding for: no evidence either way
                self._similar[key] = 0.0
        return self._similar[key]

    def align(self, a: list[tuple[str, str]], b: list[tuple[str, str]]) -> float:
        """Mean over ``a``'s morphemes of the best similarity to one of ``b``'s."""
        if not a or not b:
            return float(not a and not b)
        return float(np.mean([max(self.similarity(x, y) for y in b) for x in a]))

    def context(self, a: str, b: str) -> float:
        try:
            return float(cong_kiwi().context_similarity(a, b))
        except Exception:  # an empty or unknown context
            return 0.0

    def transform(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        """One row of :data:`FEATURES` per pair."""
        left, right = self.morphemes(first), self.morphemes(second)
        rows = []
        for a, b, x, y in zip(left, right, first, second, strict=True):
            ab, ba = self.align(a, b), self.align(b, a)
            rows.append([ab, ba, min(ab, ba), self.context(x, y)])
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
