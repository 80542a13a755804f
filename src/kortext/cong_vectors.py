"""CoNG morpheme vectors, recovered from Kiwi's similarities, and sentence vectors built on them.

Kiwi exposes CoNG's morpheme embeddings only as cosine similarities, never as vectors. But
cosines fix unit vectors up to a rotation, which no model downstream can tell apart: the
similarity matrix ``G`` of ``K`` anchor morphemes has rank 256 (CoNG's width; the 257th
eigenvalue is 1e-6), so ``G = U Λ Uᵀ`` places the anchors at ``U Λ^½`` and any morpheme
whose similarities to the anchors are ``s`` sits at ``Λ^-½ Uᵀ s``. The recovered vectors
give back ``morpheme_similarity`` to about 1e-4. Only ids below 70,488 carry an embedding;
the tokenizer's own ids for some particles lie above, so tokens are looked up by form and tag.

Two uses: :class:`CongKeyedVectors`, the ``cong`` source of word vectors next to the
word2vec/fastText ones of :mod:`kortext.embeddings` (``--embeddings cong``), and
:class:`CongSentenceFeatures`, a review's SIF-weighted mean of its morphemes' vectors
(Arora et al. 2017) for the rating and sentiment models (``--cong``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from kortext.cong import CONTENT_TAGS, cong_kiwi

ANCHORS = 512  # of every part of speech, > 256, so that every direction of the embedding is seen
FIRST_ANCHOR_ID = 100  # lower ids are Kiwi's placeholders (empty forms)
SIF_A = 1e-3  # the SIF paper's weight a / (a + p(w))
CONG_SCALE = 1.0  # of the sentence block beside TF-IDF (--cong); see benchmarks/cong_sentences.py


def _base_tag(tag: str) -> str:
    return tag.split("-")[0]  # VA-I (irregular) is VA


class CongSpace:
    """Anchors and the projection that turns similarities to them into vectors."""

    def __init__(self, kiwi: Any) -> None:
        self.kiwi = kiwi
        self.ids: dict[tuple[str, str], int] = {}  # (form, base tag) -> the embedded id
        self.by_form: dict[str, int] = {}  # bare form -> its most frequent embedded sense
        other_forms: dict[str, int] = {}  # particles, endings...: a bare form means them last
        anchors: list[int] = []
        for morpheme_id in range(_embedded_count(kiwi)):
            token = kiwi.morpheme(morpheme_id)
            if not token.form:
                continue
            key = (token.form, _base_tag(token.tag))
            self.ids.setdefault(key, morpheme_id)
            forms = self.by_form if _base_tag(token.tag) in CONTENT_TAGS else other_forms
            forms.setdefault(token.form, morpheme_id)
            if morpheme_id >= FIRST_ANCHOR_ID and len(anchors) < ANCHORS:
                anchors.append(morpheme_id)
        self.by_form = {**other_forms, **self.by_form}
        self.anchors = np.asarray(anchors)
        gram = np.array([self._similarities(a) for a in anchors], dtype=np.float64)
        values, vectors = np.linalg.eigh((gram + gram.T) / 2)
        keep = values > values.max() * 1e-6  # CoNG's 256 dimensions; the rest is rounding
        values, vectors = values[keep][::-1], vectors[:, keep][:, ::-1]
        vectors *= np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
        self.projection = (vectors / np.sqrt(values)).T  # (dims, anchors)
        self._cache: dict[int, np.ndarray] = {}

    @property
    def dims(self) -> int:
        return int(self.projection.shape[0])

    def _similarities(self, morpheme_id: int) -> list[float]:
        return [self.kiwi.morpheme_similarity(morpheme_id, int(a)) for a in self.anchors]

    def vector(self, morpheme_id: int) -> np.ndarray:
        """The unit vector of an embedded morpheme id."""
        if morpheme_id not in self._cache:
            found = self.projection @ np.asarray(self._similarities(morpheme_id))
            self._cache[morpheme_id] = (found / max(np.linalg.norm(found), 1e-12)).astype(np.float32)
        return self._cache[morpheme_id]

    def lookup(self, token: str) -> int | None:
        """The id of ``form/TAG`` (the kiwi tokenizer's ``with_tags``) or of a bare form."""
        form, slash, tag = token.rpartition("/")
        if slash and form and tag.isupper():
            return self.ids.get((form, _base_tag(tag)))
        return self.by_form.get(token)


def _embedded_count(kiwi: Any) -> int:
    """Ids with an embedding are a prefix of all ids: find where similarity turns NaN."""
    low, high = FIRST_ANCHOR_ID, 1 << 21
    while low < high - 1:
        middle = (low + high) // 2
        try:
            finite = np.isfinite(kiwi.morpheme_similarity(middle, FIRST_ANCHOR_ID))
        except Exception:  # past the last morpheme
            finite = False
        low, high = (middle, high) if finite else (low, middle)
    return high


@lru_cache(maxsize=1)
def cong_space() -> CongSpace:
    """Built once per process (about 2 s on top of loading the model)."""
    return CongSpace(cong_kiwi())


class CongKeyedVectors:
    """The slice of gensim's ``KeyedVectors`` the models use (``vector_size``, ``in``, ``[]``,
    ``similarity``, ``most_similar``), over every morpheme CoNG knows; keys are the kiwi
    tokenizer's morphemes, bare (``빨래``) or tagged (``빨래/NNG``)."""

    def __init__(self, space: CongSpace | None = None) -> None:
        self.space = space or cong_space()
        self.vector_size = self.space.dims

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.space.lookup(token) is not None

    def __getitem__(self, token: str) -> np.ndarray:
        found = self.space.lookup(token)
        if found is None:
            raise KeyError(f"CoNG has no embedding for {token!r}")
        return self.space.vector(found)

    def similarity(self, first: str, second: str) -> float:
        return float(self[first] @ self[second])

    def most_similar(self, token: str, topn: int = 10) -> list[tuple[str, float]]:
        found = self.space.lookup(token)
        if found is None:
            raise KeyError(f"CoNG has no embedding for {token!r}")
        near = self.space.kiwi.most_similar_morphemes(found, top_n=topn)
        return [(f"{m.form}/{m.tag}", float(m.score)) for m in near]


class CongSentenceFeatures:
    """A text's SIF-weighted mean of its morphemes' CoNG vectors, less the training texts'
    common direction: frequent morphemes (particles, 영화) weigh little, rare ones much."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale  # of the standardised columns, against the TF-IDF block beside them
        self.weights: dict[int, float] = {}
        self.common: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:  # a checkpoint keeps weights, not Kiwi
        return {k: getattr(self, k) for k in ("scale", "weights", "common", "mean", "std")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)

    @property
    def dims(self) -> int:
        return cong_space().dims

    def morphemes(self, texts: Sequence[str]) -> list[list[int]]:
        """Embedded ids of each text's morphemes (punctuation and unknown ones dropped)."""
        space = cong_space()
        found = []
        for tokens in space.kiwi.tokenize(list(texts)):
            ids = (space.ids.get((t.form, _base_tag(t.tag))) for t in tokens)
            found.append([i for i in ids if i is not None])
        return found

    def _mean(self, ids: Iterable[int]) -> np.ndarray:
        space, total, weight = cong_space(), np.zeros(self.dims), 0.0
        for morpheme_id in ids:
            w = self.weights.get(morpheme_id, 1.0)  # unseen in training: rare, full weight
            total += w * space.vector(morpheme_id)
            weight += w
        return total / weight if weight else total

    def _rows(self, morphemes: list[list[int]]) -> np.ndarray:
        rows = np.array([self._mean(ids) for ids in morphemes]).reshape(len(morphemes), self.dims)
        if self.common is not None:
            rows -= np.outer(rows @ self.common, self.common)
        return rows

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        morphemes = self.morphemes(texts)
        counts = Counter(i for ids in morphemes for i in ids)
        total = max(1, sum(counts.values()))
        self.weights = {i: SIF_A / (SIF_A + n / total) for i, n in counts.items()}
        self.common = self.mean = self.std = None
        raw = self._rows(morphemes)
        centred = raw - raw.mean(axis=0)
        top = np.linalg.eigh(centred.T @ centred)[1][:, -1]  # the first principal direction
        self.common = top * np.sign(top[np.abs(top).argmax()])
        rows = self._rows(morphemes)
        self.mean, self.std = rows.mean(axis=0), rows.std(axis=0) + 1e-6
        return self._scaled(rows)

    def fit(self, texts: Sequence[str]) -> CongSentenceFeatures:
        self.fit_transform(texts)
        return self

    def _scaled(self, rows: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            return rows
        return (rows - self.mean) / self.std * self.scale

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """One row of :attr:`dims` standardised floats per text (zeros before standardising
        for a text with no known morpheme)."""
        return self._scaled(self._rows(self.morphemes(texts)))
