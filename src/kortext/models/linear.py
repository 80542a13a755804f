"""TF-IDF + linear baselines (scikit-learn): the yardstick every neural model must beat.

Word and character n-grams together: characters survive Korean's agglutination (a noun
with different particles still shares its syllables) and spelling noise, words keep the
phrase-level signal. For pairs, the model sees both questions' TF-IDF vectors combined
as ``|a - b|`` and ``a * b`` plus dense similarity features (cosines, Jaccard, edit
ratios, length differences, jamo-level overlap), since whether two questions match is a
property of the pair, not of either text.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import StandardScaler

from kortext.cong import CongPairFeatures
from kortext.cong_vectors import CongSentenceFeatures

Task = Literal["binary", "regression"]
_PUNCT = re.compile(r"[^\w]+")


def text_vectorizer(max_features: int | None = 400_000) -> FeatureUnion:
    """Word 1-2-grams and character 1-3-grams (within word boundaries), sublinear TF."""
    return FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    min_df=2,
                    max_features=max_features,
                    token_pattern=r"(?u)\b\w+\b",
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(1, 3),
                    sublinear_tf=True,
                    min_df=2,
                    max_features=max_features,
                ),
            ),
        ]
    )


class TfidfLinear:
    """Single texts: LogisticRegression (binary) or Ridge (regression) on TF-IDF n-grams.

    For ratings, a linear score is not the expected rating: reviews pile up at 1 and 10,
    so the same score step means more near the middle than at the ends. ``calibrate``
    fits an isotonic map from score to rating on held-out rows, which lowers MSE.
    """

    def __init__(self, task: Task = "binary", C: float = 4.0, alpha: float = 3.0, cong: float = 0.0) -> None:
        self.task = task
        self.vectorizer = text_vectorizer()
        # > 0: CoNG sentence vectors beside the n-grams, scaled by it (kortext.cong_vectors)
        self.cong = CongSentenceFeatures(cong) if cong > 0 else None
        self.model: LogisticRegression | Ridge = (
            LogisticRegression(C=C, max_iter=2000) if task == "binary" else Ridge(alpha=alpha)
        )
        self.calibration: IsotonicRegression | None = None

    def _features(self, texts: Sequence[str], fit: bool = False) -> sparse.csr_matrix:
        x = self.vectorizer.fit_transform(texts) if fit else self.vectorizer.transform(texts)
        cong = getattr(self, "cong", None)  # checkpoints saved before it existed
        if cong is None:
            return x
        dense = cong.fit_transform(texts) if fit else cong.transform(texts)
        return sparse.hstack([x, sparse.csr_matrix(dense)]).tocsr()

    def fit(self, texts: Sequence[str], labels: Sequence[float]) -> TfidfLinear:
        self.model.fit(self._features(texts, fit=True), np.asarray(labels))
        return self

    def _raw(self, texts: Sequence[str]) -> np.ndarray:
        x = self._features(texts)
        if isinstance(self.model, LogisticRegression):
            return self.model.predict_proba(x)[:, 1]
        return self.model.predict(x)

    def calibrate(self, texts: Sequence[str], labels: Sequence[float]) -> TfidfLinear:
        """Map regression scores to ratings monotonically, fitted on rows the model did not see."""
        if self.task == "regression" and len(texts) >= 2:
            self.calibration = IsotonicRegression(out_of_bounds="clip").fit(
                self._raw(texts), np.asarray(labels, dtype=np.float64)
            )
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of class 1 (binary) or the predicted value (regression)."""
        raw = self._raw(texts)
        calibration = getattr(self, "calibration", None)  # checkpoints saved before it existed
        return raw if calibration is None else calibration.predict(raw)


def jamo(text: str) -> str:
    """Hangul syllables split into their letters (NFD), so 뭔가요/뭔가여 differ in one letter."""
    return unicodedata.normalize("NFD", text)


def _squash(text: str) -> str:
    return _PUNCT.sub("", text).lower()


def _ngrams(text: str, n: int) -> set[str]:
    return {text[i : i + n] for i in range(max(1, len(text) - n + 1))} if text else set()


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _cosine_rows(a: sparse.csr_matrix, b: sparse.csr_matrix) -> np.ndarray:
    # TfidfVectorizer rows are L2-normalised, so the row-wise dot product is the cosine
    return np.asarray(a.multiply(b).sum(axis=1)).ravel()


def similarity_features(first: Sequence[str], second: Sequence[str]) -> np.ndarray:
    """Hand-made pair similarities that do not depend on a fitted vocabulary."""
    rows = []
    for x, y in zip(first, second, strict=True):
        sx, sy = _squash(x), _squash(y)
        jx, jy = jamo(sx), jamo(sy)
        wx, wy = set(x.split()), set(y.split())
        lx, ly = len(sx), len(sy)
        rows.append(
            [
                float(sx == sy),
                _jaccard(set(sx), set(sy)),
                _jaccard(_ngrams(sx, 2), _ngrams(sy, 2)),
                _jaccard(_ngrams(sx, 3), _ngrams(sy, 3)),
                _jaccard(_ngrams(jx, 3), _ngrams(jy, 3)),
                _jaccard(wx, wy),
                len(wx ^ wy) / max(1, len(wx | wy)),
                difflib.SequenceMatcher(None, sx, sy, autojunk=False).ratio(),
                difflib.SequenceMatcher(None, jx, jy, autojunk=False).ratio(),
                abs(lx - ly) / max(1, lx, ly),
                min(lx, ly) / max(1, lx, ly),
                np.log1p(abs(lx - ly)),
                np.log1p(lx + ly),
                float(sx in sy or sy in sx),
            ]
        )
    return np.asarray(rows, dtype=np.float64)


class PairVectorizer:
    """TF-IDF on both questions (one vocabulary) plus similarities, as one sparse matrix."""

    def __init__(self, cong: bool = False) -> None:
        self.cong = CongPairFeatures() if cong else None  # pretrained word knowledge (kortext.cong)
        self.word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        self.char = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
        self.jamo = TfidfVectorizer(analyzer="char", ngram_range=(2, 4), sublinear_tf=True, preprocessor=jamo)
        self.scaler = StandardScaler()

    def _dense(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        cosines = [
            _cosine_rows(v.transform(first), v.transform(second)) for v in (self.word, self.char, self.jamo)
        ]
        cong = getattr(self, "cong", None)  # checkpoints saved before it existed
        extra = [cong.transform(first, second)] if cong is not None else []
        return np.column_stack([similarity_features(first, second), *cosines, *extra])

    def fit(self, first: Sequence[str], second: Sequence[str]) -> PairVectorizer:
        both = list(first) + list(second)
        for vectorizer in (self.word, self.char, self.jamo):
            vectorizer.fit(both)
        self.scaler.fit(self._dense(first, second))
        return self

    def dense(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        return self.scaler.transform(self._dense(first, second))

    def transform(self, first: Sequence[str], second: Sequence[str]) -> sparse.csr_matrix:
        blocks = []
        for vectorizer in (self.word, self.char):
            a, b = vectorizer.transform(first), vectorizer.transform(second)
            blocks += [abs(a - b), a.multiply(b)]
        return sparse.hstack([*blocks, sparse.csr_matrix(self.dense(first, second))]).tocsr()


class TfidfPairClassifier:
    """Kin baseline: logistic regression over :class:`PairVectorizer` features."""

    def __init__(self, C: float = 4.0, cong: bool = False) -> None:
        self.vectorizer = PairVectorizer(cong)
        self.model = LogisticRegression(C=C, max_iter=3000)

    def fit(self, first: Sequence[str], second: Sequence[str], labels: Sequence[int]) -> TfidfPairClassifier:
        self.vectorizer.fit(first, second)
        self.model.fit(self.vectorizer.transform(first, second), np.asarray(labels))
        return self

    def predict(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        """Probability that the two questions ask the same thing."""
        return self.model.predict_proba(self.vectorizer.transform(first, second))[:, 1]
