"""kortext.jamo: the lossless round trip and the 2018 baseline's 251-id scheme; kortext.normalize."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from kortext import jamo
from kortext.corpora import nsmc_reviews
from kortext.normalize import collapse_repeats, normalize

ALL_SYLLABLES = "".join(chr(code) for code in range(0xAC00, 0xD7A4))

# The 2018 index as kor_char_parser.py states it, letter by letter; the reference below
# finds each letter by its Unicode name, apart from the arithmetic in kortext.jamo.
CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
JONG = (
    "ㄱ/ㄲ/ㄱㅅ/ㄴ/ㄴㅈ/ㄴㅎ/ㄷ/ㄹ/ㄹㄱ/ㄹㅁ/ㄹㅂ/ㄹㅅ/ㄹㅌ/ㄹㅍ/ㄹㅎ/ㅁ/ㅂ/ㅂㅅ/ㅅ/ㅆ/ㅇ/ㅈ/ㅊ/ㅋ/ㅌ/ㅍ/ㅎ"
)
JONG_LETTERS = JONG.split("/")


def letters(conjoining: str) -> str:
    """U+11AA HANGUL JONGSEONG KIYEOK-SIOS -> "ㄱㅅ" (compatibility letters, one per part)."""
    name = unicodedata.name(conjoining).split(" ", 2)[2]
    return "".join(unicodedata.lookup(f"HANGUL LETTER {part}") for part in name.split("-"))


def reference_ids(char: str) -> list[int]:
    if "가" <= char <= "힣":
        parts = unicodedata.normalize("NFD", char)
        ids = [CHO.index(letters(parts[0])), 19 + JUNG.index(letters(parts[1]))]
        if len(parts) == 3:
            ids.append(40 + JONG_LETTERS.index(letters(parts[2])))
        return ids
    if ord(char) < 128:
        return [67 + ord(char)]
    if "ㄱ" <= char <= "ㅣ":
        return [195 + ord(char) - ord("ㄱ")]
    return [246 + "♡♥★☆".index(char)] if char in "♡♥★☆" else [250]


def test_round_trip_every_syllable_and_mixed_text() -> None:
    assert jamo.compose(jamo.decompose(ALL_SYLLABLES)) == ALL_SYLLABLES
    assert jamo.decompose(ALL_SYLLABLES) == unicodedata.normalize("NFD", ALL_SYLLABLES)
    mixed = "값진 영화 ㅋㅋ café Naïve 😀 mv00041958의 ♥ 100%!! \t끝"
    assert jamo.compose(jamo.decompose(mixed)) == mixed
    assert "é" in jamo.decompose(mixed)  # only Hangul syllables are split, unlike NFD


def test_decompose_known_characters() -> None:
    assert jamo.decompose("값") == "\u1100\u1161\u11b9"
    assert jamo.decompose("값어치", compatibility=True) == "ㄱㅏㅂㅅㅇㅓㅊㅣ"
    assert jamo.split_syllable("힣") == (18, 20, 27)
    with pytest.raises(ValueError, match="not a precomposed Hangul syllable"):
        jamo.split_syllable("a")


def test_baseline_index_on_known_characters() -> None:
    assert jamo.BASELINE_VOCAB_SIZE == 251
    assert jamo.baseline_ids("가") == [0, 19]
    assert jamo.baseline_ids("각") == [0, 19, 40]
    assert jamo.baseline_ids("값") == [0, 19, 57]
    assert jamo.baseline_ids("힣") == [18, 39, 66]
    assert jamo.baseline_ids("a ~") == [164, 99, 193]
    assert jamo.baseline_ids("ㄱㅋㅣ") == [195, 221, 245]
    assert jamo.baseline_ids("♡♥★☆😀漢") == [246, 247, 248, 249, 250, 250]
    assert len(jamo.baseline_symbols()) == 251


def test_baseline_index_matches_the_scheme_everywhere() -> None:
    for char in ALL_SYLLABLES + "".join(map(chr, range(128))) + "ㄱㄳㅎㅏㅣ♡☆😀é":
        assert jamo.baseline_ids(char) == reference_ids(char), char


def test_encode_baseline_pads_and_cuts_like_the_baseline() -> None:
    assert jamo.encode_baseline("각", 5) == [0, 19, 40, 0, 0]
    assert jamo.encode_baseline("각각", 4) == [0, 19, 40, 0]
    assert jamo.encode_baseline("", 3) == [0, 0, 0]
    matrix = jamo.encode_baseline_batch(["가", "힣힣"], 4)
    assert matrix.shape == (2, 4) and matrix.dtype.name == "int32"
    assert matrix.tolist() == [[0, 19, 0, 0], [18, 39, 66, 18]]
    with pytest.raises(ValueError, match="max_length"):
        jamo.encode_baseline("가", 0)


def test_real_reviews_stay_inside_the_index(shared_data: Path) -> None:
    reviews = nsmc_reviews(shared_data / "nsmc" / "reviews.tsv.gz", limit=3000)
    assert len(reviews) == 3000
    for review in reviews:
        assert jamo.compose(jamo.decompose(review)) == review
        ids = jamo.encode_baseline(review, 420)
        assert len(ids) == 420 and all(0 <= i < 251 for i in ids)


def test_normalize() -> None:
    assert normalize("ㅋㅋㅋㅋㅋ 재밌다!!!!!") == "ㅋㅋ 재밌다!!"
    assert normalize("하하하하   ㅎㅋㅎㅋㅎㅋㅎㅋ ") == "하하 ㅎㅋㅎㅋ"
    assert normalize("1000000원 아깝다") == "1000000원 아깝다"
    assert normalize("mv00041958의 ac00012345 연기") == "MOVIEID의 ACTORID 연기"
    assert normalize("mv00041958", mask_ids=False) == "mv00041958"
    assert normalize("ㅋㅋㅋㅋ", max_repeat=0) == "ㅋㅋㅋㅋ"
    assert collapse_repeats("ㅠㅠㅠㅠ", 1) == "ㅠ"
    assert normalize("") == ""
    with pytest.raises(ValueError, match="max_repeat"):
        collapse_repeats("ㅋ", -1)
