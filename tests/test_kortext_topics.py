"""Topic-held-out validation, mined hard negatives and CoNG pair features, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from kortext.pipeline import Options, make_pipeline
from kortext.topics import cluster_texts, mine_hard_negatives, topic_split

TOPICS = {
    "love": ["여자친구가 연락을 안 해", "남자친구랑 헤어졌어", "여자친구 생일 선물 추천", "짝사랑 고백할까",
             "남자친구가 바람폈어", "여자친구랑 싸웠어", "연애가 너무 어려워", "썸 타는 중인데 어떡해"],
    "study": ["수학 공부 어떻게 해", "시험 기간인데 집중이 안 돼", "영어 단어 외우는 법", "성적이 안 올라",
              "공부 계획 세우는 법", "수능 준비 언제부터", "도서관에서 공부할까", "시험 망쳤어"],
    "weather": ["오늘 비 온대", "내일 날씨 어때", "너무 더워서 힘들어", "눈이 많이 온다",
                "장마 언제 끝나", "바람이 너무 세", "우산 챙겨야 하나", "미세먼지 심하다"],
}  # fmt: skip


def _pairs() -> tuple[list[str], list[str], list[float]]:
    """Within-topic pairs: a question with itself reworded (1) and with its neighbour (0)."""
    first, second, labels = [], [], []
    for questions in TOPICS.values():
        for i, question in enumerate(questions):
            first += [question, question]
            second += [question + "?", questions[(i + 1) % len(questions)]]
            labels += [1.0, 0.0]
    return first, second, labels


def test_a_topic_split_holds_out_whole_topics_and_never_trains_on_their_questions() -> None:
    first, second, _ = _pairs()
    train, valid = topic_split(first, second, 0.3, seed=3)
    assert len(train) and len(valid) and len(train) + len(valid) == len(first)
    assert set(train).isdisjoint(valid)
    topic = cluster_texts([*first, *second], seed=3)
    trained = {topic[first[i]] for i in train} | {topic[second[i]] for i in train}
    # every held-out pair has a question of a topic no training pair touches
    assert all(topic[first[i]] not in trained or topic[second[i]] not in trained for i in valid)
    assert np.array_equal(topic_split(first, second, 0.3, seed=3)[1], valid)  # seeded
    assert len(topic_split(first[:1], second[:1], 0.3, seed=3)[1]) == 0


def test_hard_negatives_pair_different_questions_of_one_topic_and_never_a_known_paraphrase() -> None:
    first, second, labels = _pairs()
    first += ["수학 공부 어떻게 해"]
    second += ["공부 계획 세우는 법"]  # the data says these two ask the same thing
    labels += [1.0]
    mined = mine_hard_negatives(first, second, labels, count=10, seed=1)
    assert 0 < len(mined) <= 10
    known = {frozenset(p) for p in zip(first, second, strict=True)}
    paraphrases = {frozenset(p) for p, y in zip(zip(first, second, strict=True), labels, strict=True) if y}
    topic = cluster_texts([*first, *second], seed=1)
    questions = set(first) | set(second)
    for a, b in (line.split("\t") for line in mined):
        assert a != b and a in questions and b in questions
        assert frozenset((a, b)) not in known and frozenset((a, b)) not in paraphrases
        assert {a.rstrip("?"), b.rstrip("?")} != {"수학 공부 어떻게 해", "공부 계획 세우는 법"}
        assert topic[a] == topic[b]
    assert len(set(mined)) == len(mined)
    assert mine_hard_negatives(first, second, labels, count=0) == []


def test_a_pair_pipeline_trains_on_hard_negatives_and_scores_same_topic_pairs() -> None:
    first, second, labels = _pairs()
    lines = [f"{a}\t{b}" for a, b in zip(first, second, strict=True)] * 2
    options = Options(valid_split="topic", hard_negatives=0.5, valid_fraction=0.3, progress=False)
    pipeline = make_pipeline("tfidf", "binary", True, options)
    result = pipeline.fit(lines, labels * 2)
    assert result["train_rows"] == len(lines)  # mined rows are extra, not counted as data
    assert 0.0 <= result["same_topic_accuracy"] <= 1.0 and 0.0 <= result["same_topic_p_same"] <= 1.0
    _, valid = pipeline.split(lines)
    assert pipeline.valid_predictions is not None and len(pipeline.valid_predictions) == len(valid)


def test_cong_features_align_words_the_n_grams_cannot() -> None:
    from kortext.cong import FEATURES, CongPairFeatures, cong_available

    if not cong_available():
        pytest.skip("Kiwi's CoNG model is not installed (pip install kiwipiepy-model)")
    features = CongPairFeatures()
    rows = features.transform(
        ["빨래 어떻게 해", "빨래 어떻게 해", ""], ["세탁기 사용법", "주식 투자 방법", ""]
    )
    assert rows.shape == (3, len(FEATURES))
    assert rows[0, 0] > rows[1, 0] and rows[0, 2] > rows[1, 2]  # 빨래~세탁기 beats 빨래~주식
    assert rows[2, 0] == 1.0  # two empty questions: nothing to tell them apart
    assert features.similarity(("빨래", "NNG"), ("세탁기", "NNG")) > 0.5
