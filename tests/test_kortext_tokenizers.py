"""Every kortext tokenizer on tricky input, batch == one by one, and the clear errors."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from kortext.corpora import nsmc_reviews
from kortext.normalize import normalize
from kortext.tokenizers import NAMES, SentencePieceTokenizer, Tokenizer, TokenizerUnavailable, get_tokenizer
from kortext.tokenizers.okt import OktTokenizer

MORPHOLOGICAL = ("kiwi", "okt", "mecab")
REVIEW_140 = (
    "처음엔 별 기대 없이 봤는데 mv00041958 보다 훨씬 낫다ㅋㅋㅋㅋ 배우들 연기도 좋고 OST도 최고!! "
    "다만 후반부 전개가 너무 급해서 아쉬웠음ㅠㅠ 그래도 10점 만점에 8점 줍니다 👍 추천합니다 꼭 보세요 "
    "극장에서 한 번 더 볼 생각임 진짜로!"
)


def _reviews() -> list[str]:
    """Real reviews, required under CI; a skip elsewhere when the data mirror is absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {SHARED_DATA} is missing")
        pytest.skip(f"real data mirror {SHARED_DATA} not present (clone the project beside shared/)")
    return nsmc_reviews(SHARED_DATA / "nsmc" / "reviews.tsv.gz", limit=4000)


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    return _reviews()


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory: pytest.TempPathFactory, reviews: list[str]) -> Path:
    folder = tmp_path_factory.mktemp("spm")
    SentencePieceTokenizer.train([normalize(r) for r in reviews[:3000]], 2000, folder)
    return folder


@pytest.fixture(scope="module")
def tokenizers() -> Iterator[dict[str, Tokenizer]]:
    """One of each, so that the JVM and the dictionaries load once for the module."""
    made = {name: get_tokenizer(name) for name in NAMES if name != "sentencepiece"}
    yield made


def tokenizer(name: str, tokenizers: dict[str, Tokenizer], request: pytest.FixtureRequest) -> Tokenizer:
    if name == "sentencepiece":
        return get_tokenizer("sentencepiece", model=request.getfixturevalue("spm_dir"))
    return tokenizers[name]


@pytest.mark.parametrize("name", NAMES)
def test_tricky_input(name: str, tokenizers: dict[str, Tokenizer], request: pytest.FixtureRequest) -> None:
    tok = tokenizer(name, tokenizers, request)
    assert tok.name == name
    assert tok.tokenize("") == []
    assert tok.tokenize("  \t ") == []
    cases = {
        "emoji": "😀🎬 👍",
        "latin": "Avengers: Endgame (2019) 10/10 is GREAT",
        "masked": normalize("mv00041958 보다 ac00012345의 연기가 낫다"),
        "review": normalize(REVIEW_140),
    }
    assert len(REVIEW_140) == 140
    for case, text in cases.items():
        tokens = tok.tokenize(text)
        assert tokens, case
        assert all(isinstance(t, str) and t and not any(c.isspace() for c in t) for t in tokens), (
            case,
            tokens,
        )
        joined = "".join(tokens)
        if case == "emoji":
            assert all(e in joined for e in "😀🎬👍"), tokens
        if case == "latin" and name != "jamo":
            assert "Avengers" in joined and "Endgame" in joined, tokens
        if case == "masked":
            assert "MOVIEID" in joined and "ACTORID" in joined, tokens
            assert "00041958" not in joined
        if case == "review":
            assert len(tokens) >= 20, tokens
    if name in MORPHOLOGICAL:
        masked = tok.tokenize(cases["masked"])
        assert "MOVIEID" in masked and "ACTORID" in masked, masked
        assert "연기" in masked, masked


@pytest.mark.parametrize("name", NAMES)
def test_batch_matches_one_by_one(
    name: str, tokenizers: dict[str, Tokenizer], request: pytest.FixtureRequest, reviews: list[str]
) -> None:
    tok = tokenizer(name, tokenizers, request)
    texts = ["", *reviews[:400], "😀", "   "]
    tok.min_parallel = 0  # use the pool even for this small batch
    batched = tok.tokenize_batch(texts, workers=2)
    assert len(batched) == len(texts)
    assert batched == [tok.tokenize(text) for text in texts]
    assert batched[0] == [] and batched[-1] == []
    assert tok.tokenize_batch([], workers=2) == []


def test_char_and_jamo_are_lossless_apart_from_spacing(tokenizers: dict[str, Tokenizer]) -> None:
    from kortext.jamo import compose

    text = "값진  영화 ㅋㅋ 😀"
    assert tokenizers["char"].tokenize(text) == ["값", "진", "▁", "영", "화", "▁", "ㅋ", "ㅋ", "▁", "😀"]
    assert compose("".join(tokenizers["jamo"].tokenize(text))).replace("▁", " ") == "값진 영화 ㅋㅋ 😀"
    assert get_tokenizer("char", keep_space=False).tokenize(" 가 나 ") == ["가", "나"]


def test_tags_and_pickling(tokenizers: dict[str, Tokenizer]) -> None:
    assert "영화/NNG" in get_tokenizer("kiwi", with_tags=True).tokenize("좋은 영화")
    assert "영화/NNG" in get_tokenizer("mecab", with_tags=True).tokenize("좋은 영화")
    assert "영화/Noun" in get_tokenizer("okt", with_tags=True).tokenize("좋은 영화")
    loaded = tokenizers["mecab"]
    assert loaded.tokenize("영화") == ["영화"]  # backend now loaded
    copy = pickle.loads(pickle.dumps(loaded))
    assert copy.tokenize("좋은 영화") == loaded.tokenize("좋은 영화")


def test_sentencepiece_train_and_load(spm_dir: Path, reviews: list[str]) -> None:
    assert (spm_dir / "spm.model").is_file() and (spm_dir / "spm.vocab").is_file()
    trained = SentencePieceTokenizer.load(spm_dir / "spm.model")
    assert trained.vocab_size == 2000
    review = normalize(reviews[3500])  # not in the training part
    pieces = trained.tokenize(review)
    assert "".join(pieces).replace("▁", " ").strip() == review
    assert len(trained.encode(review)) == len(pieces)
    with pytest.raises(ValueError, match="non-empty"):
        SentencePieceTokenizer.train(["", " "], 100, spm_dir / "empty")
    with pytest.raises(ValueError, match="Increase vocab_size"):
        SentencePieceTokenizer.train(reviews[:3000], 50, spm_dir / "small")


def test_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown tokenizer 'nope'; choose one of kiwi, okt"):
        get_tokenizer("nope")
    with pytest.raises(FileNotFoundError, match="no sentencepiece model"):
        get_tokenizer("sentencepiece", model=tmp_path)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        get_tokenizer("char").tokenize_batch(["가"], workers=0)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(TokenizerUnavailable, match="okt needs a Java runtime"):
        OktTokenizer().tokenize("가")
