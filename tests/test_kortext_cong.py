"""Kiwi's CoNG as vectors: the recovered morpheme vectors, the ``cong`` embedding source,
sentence vectors, and the rating/sentiment models that use them, on tiny data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from kortext.cong import cong_available

pytestmark = pytest.mark.skipif(
    not cong_available(), reason="Kiwi's CoNG model is not installed (pip install kiwipiepy-model)"
)

REVIEWS = [
    "이 영화 정말 재밌다 최고",
    "배우 연기가 훌륭하고 감동적",
    "지루하고 최악의 영화",
    "돈 아깝다 시간 낭비",
]


def test_recovered_vectors_give_back_cong_similarities() -> None:
    from kortext.cong import cong_kiwi
    from kortext.cong_vectors import CongKeyedVectors
    from kortext.embeddings import pretrained

    vectors = pretrained("cong")  # the installed source: nothing to publish first
    assert isinstance(vectors, CongKeyedVectors) and vectors.vector_size == 256
    assert vectors.similarity("빨래", "세탁기") > vectors.similarity("빨래", "정치") + 0.3
    for first, second in [("빨래/NNG", "세탁기/NNG"), ("먹/VV", "마시/VV"), ("을/JKO", "이/JKS")]:
        expected = cong_kiwi().morpheme_similarity(tuple(first.split("/")), tuple(second.split("/")))
        assert vectors.similarity(first, second) == pytest.approx(expected, abs=1e-3)
    assert np.linalg.norm(vectors["영화"]) == pytest.approx(1.0, abs=1e-5)
    assert "빨래/NNG" in vectors and "ㅋㅋ" not in vectors and 3 not in vectors
    with pytest.raises(KeyError, match="CoNG has no embedding for 'ㅋㅋ'"):
        vectors["ㅋㅋ"]
    assert vectors.most_similar("빨래", topn=3)[0][0].endswith("/NNG")


def test_sentence_vectors_have_one_row_per_text_and_survive_a_checkpoint() -> None:
    from kortext.cong_vectors import CongSentenceFeatures

    features = CongSentenceFeatures()
    fitted = features.fit_transform(REVIEWS * 3)
    assert fitted.shape == (12, 256) and np.isfinite(fitted).all()
    texts = ["재밌는 영화", "", "ㅋㅋㅋ", "지루한 영화"]
    rows = features.transform(texts)
    assert rows.shape == (4, 256)
    assert np.array_equal(rows[1], rows[2])  # no known morpheme: the same (mean-centred) zero vector
    assert np.allclose(CongSentenceFeatures().fit(REVIEWS * 3).transform(texts), rows)  # deterministic
    restored = pickle.loads(pickle.dumps(features))
    assert np.allclose(restored.transform(texts), rows)
    # the two texts that share 영화 and differ in the judgement are apart, not equal
    assert not np.allclose(rows[0], rows[3])


def test_rating_and_sentiment_models_with_cong_train_save_and_predict(tmp_path: Path) -> None:
    from kortext.pipeline import Options, Pipeline, make_pipeline

    texts, unseen = REVIEWS * 10, ["최고의 영화 감동", "최악 시간 낭비"]
    rating = make_pipeline("tfidf", "regression", False, Options(cong_features=True, progress=False))
    rating.fit(texts, [10.0, 9.0, 2.0, 1.0] * 10)
    assert rating.estimator.cong is not None  # type: ignore[attr-defined]
    rating.save(str(tmp_path))
    restored = [p for _, p in Pipeline.load(str(tmp_path)).infer(unseen)]
    assert restored == [p for _, p in rating.infer(unseen)] and all(1 <= p <= 10 for p in restored)
    sentiment = make_pipeline("tfidf", "binary", False, Options(cong_features=True, progress=False))
    sentiment.fit(texts, [1.0, 1.0, 0.0, 0.0] * 10)
    positive, negative = (p for p, _ in sentiment.infer(unseen))
    assert positive > negative


def test_textcnn_static_takes_cong_vectors_for_kiwi_morphemes() -> None:
    from kortext.pipeline import Options, make_pipeline

    options = Options(
        embeddings="cong", tokenizer="kiwi", epochs=1, max_length=20, progress=False, batch_size=8
    )
    pipeline = make_pipeline("textcnn-static", "binary", False, options)
    pipeline.fit(REVIEWS * 4, [1.0, 1.0, 0.0, 0.0] * 4)
    assert pipeline.options.embed_dim == 256
    assert len(pipeline.infer(["재밌는 영화"])) == 1


def test_cong_on_a_model_that_cannot_use_it_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import runpy

    mission = runpy.run_path(
        str(Path(__file__).resolve().parents[1] / "missions" / "movie_review" / "main.py")
    )
    with pytest.raises(SystemExit) as stopped:
        mission["MISSION"].arguments(["--model", "bigru", "--cong"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith("--cong feeds the tfidf model (alone or in an ensemble), not 'bigru'")
    assert mission["MISSION"].arguments(["--cong"]).cong
