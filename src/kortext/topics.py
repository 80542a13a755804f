"""Topics of questions: a validation split that holds out whole topics, and hard negatives.

Why: in the Kin data most different-question pairs are about different things, so a
model can score well by measuring topic overlap alone, and a random validation split
(whose questions' topics all appear in training) cannot tell. Clustering the questions'
character TF-IDF vectors gives topics; holding out whole clusters measures how a model does
on topics it never saw, and pairing two *different* questions of one topic (labelled 0)
teaches it that sharing a topic is not asking the same thing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

QUESTIONS_PER_TOPIC = 40  # about this many distinct questions per cluster
MAX_SAME_QUESTION_COSINE = 0.75  # closer neighbours are likely rewordings, not hard negatives


def _vectors(texts: Sequence[str], seed: int) -> np.ndarray:
    """L2-normalised dense topic vectors (char 1-3-gram TF-IDF reduced by SVD)."""
    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    matrix = tfidf.fit_transform(texts)
    dims = min(100, matrix.shape[1] - 1, len(texts) - 1)
    if dims < 2:
        return normalize(matrix.toarray())
    return normalize(TruncatedSVD(dims, random_state=seed).fit_transform(matrix))


def cluster_texts(texts: Sequence[str], seed: int = 1) -> dict[str, int]:
    """A topic number for each distinct text (identical texts share one)."""
    unique = sorted(set(texts))
    if len(unique) < 4:
        return {text: number for number, text in enumerate(unique)}
    clusters = max(2, len(unique) // QUESTIONS_PER_TOPIC)
    kmeans = MiniBatchKMeans(clusters, random_state=seed, n_init=3, batch_size=2048)
    with threadpool_limits(1), warnings.catch_warnings():  # small matrices: threads only contend
        # in a sandbox /proc hides the physical cores; loky's warning about it is noise in the log
        warnings.filterwarnings("ignore", message="Could not find the number of physical cores")
        labels = kmeans.fit_predict(_vectors(unique, seed))
    return dict(zip(unique, (int(label) for label in labels), strict=True))


def topic_split(
    first: Sequence[str], second: Sequence[str], valid_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices, the validation rows being whole held-out topics.

    A pair is held out when either question belongs to a held-out topic, so no question of
    those topics is ever trained on. Topics are drawn in a seeded order until about
    ``valid_fraction`` of the rows are held out (at least one row each side when possible).
    """
    n = len(first)
    if n < 2 or valid_fraction <= 0:
        return np.arange(n), np.arange(0)
    topic = cluster_texts([*first, *second], seed)
    pair_topics = [(topic[a], topic[b]) for a, b in zip(first, second, strict=True)]
    order = np.random.default_rng(seed).permutation(max(topic.values()) + 1)
    held: set[int] = set()
    valid = np.zeros(n, dtype=bool)
    target = max(1, int(round(n * valid_fraction)))
    for number in order:
        if valid.sum() >= target:
            break
        held.add(int(number))
        valid = np.array([a in held or b in held for a, b in pair_topics])
        if valid.all():  # one topic covers everything: fall back to leaving one row to train on
            valid[np.random.default_rng(seed).integers(n)] = False
            break
    return np.flatnonzero(~valid), np.flatnonzero(valid)


class _Components:
    """Union-find over texts: questions linked by a positive pair count as the same question."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, text: str) -> str:
        root = self.parent.setdefault(text, text)
        while root != self.parent[root]:
            root = self.parent[root]
        self.parent[text] = root
        return root

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def mine_hard_negatives(
    first: Sequence[str],
    second: Sequence[str],
    labels: Sequence[float] | np.ndarray,
    count: int,
    seed: int = 1,
) -> list[str]:
    """Up to ``count`` new ``q1<TAB>q2`` pairs of two different questions on one topic.

    Each is a question and its nearest neighbour of the same topic that is neither the
    same text, nor linked to it through the positive pairs (a paraphrase the data knows),
    nor so close (cosine above ``MAX_SAME_QUESTION_COSINE``) that it is likely a
    paraphrase the data does not know. Pairs already in the data are skipped.
    """
    if count <= 0:
        return []
    same = _Components()
    for a, b, label in zip(first, second, labels, strict=True):
        if label > 0.5:
            same.join(a.strip(), b.strip())
    unique = sorted({t for t in (*first, *second) if t.strip()})
    if len(unique) < 4:
        return []
    with threadpool_limits(1):  # as in cluster_texts: small matrices, threads only contend
        vectors = _vectors(unique, seed)
    topic = cluster_texts(unique, seed)
    known = {frozenset((a, b)) for a, b in zip(first, second, strict=True)}
    by_topic: dict[int, list[int]] = {}
    for index, text in enumerate(unique):
        by_topic.setdefault(topic[text], []).append(index)
    mined: list[str] = []
    for index in np.random.default_rng(seed).permutation(len(unique)):
        text = unique[index]
        members = [m for m in by_topic[topic[text]] if m != index]
        if not members:
            continue
        cosines = vectors[members] @ vectors[index]
        for rank in np.argsort(-cosines):
            other = unique[members[rank]]
            if cosines[rank] > MAX_SAME_QUESTION_COSINE or same.find(text.strip()) == same.find(
                other.strip()
            ):
                continue
            if frozenset((text, other)) not in known:
                known.add(frozenset((text, other)))
                mined.append(f"{text}\t{other}")
            break
        if len(mined) >= count:
            break
    return mined
