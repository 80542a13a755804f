"""Hangul jamo: lossless decomposition, and the 2018 NSML baseline's 251-symbol index.

Two different things live here on purpose:

* ``decompose`` / ``compose`` split precomposed syllables (U+AC00..U+D7A3) into the Unicode
  *conjoining* jamo (choseong U+1100.., jungseong U+1161.., jongseong U+11A8..) and back.
  Conjoining jamo keep the position of each letter, so the round trip is exact; everything
  that is not a syllable passes through untouched (unlike NFD, which would also split
  accented Latin letters).
* ``encode_baseline`` reproduces ``decompose_str_as_one_hot`` of the 2018 hackathon baseline
  (``kor_char_parser.py``), so a model trained on its ids matches the published baseline:
  ids 0..18 choseong, 19..39 jungseong, 40..66 jongseong (27, no "empty" final), 67..194 the
  128 ASCII code points, 195..245 the 51 compatibility jamo U+3131..U+3163, 246..249 the
  specials ♡ ♥ ★ ☆, 250 every other character. Sequences are cut or zero-padded to
  ``max_length``; as in the original, 0 is both the padding value and choseong ㄱ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

SYLLABLE_FIRST = 0xAC00
SYLLABLE_LAST = 0xD7A3
N_CHOSEONG = 19
N_JUNGSEONG = 21
N_JONGSEONG = 28  # including "no final consonant"
CHOSEONG_BASE = 0x1100
JUNGSEONG_BASE = 0x1161
JONGSEONG_BASE = 0x11A7  # index 0 (no final) has no code point; 1 is U+11A8

# The baseline's letters, in its order (compatibility jamo, as kor_char_parser.py wrote them).
CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
JONGSEONG = (
    "ㄱ ㄲ ㄱㅅ ㄴ ㄴㅈ ㄴㅎ ㄷ ㄹ ㄹㄱ ㄹㅁ ㄹㅂ ㄹㅅ ㄹㅌ ㄹㅍ ㄹㅎ ㅁ ㅂ ㅂㅅ ㅅ ㅆ ㅇ ㅈ ㅊ ㅋ ㅌ ㅍ ㅎ"
).split()

HANGUL_IDS = N_CHOSEONG + N_JUNGSEONG + (N_JONGSEONG - 1)  # 67
ASCII_OFFSET = HANGUL_IDS  # 67..194
COMPAT_JAMO_FIRST = 0x3131  # ㄱ
COMPAT_JAMO_LAST = 0x3163  # ㅣ
COMPAT_OFFSET = ASCII_OFFSET + 128  # 195..245
SPECIALS = "♡♥★☆"
SPECIAL_OFFSET = COMPAT_OFFSET + (COMPAT_JAMO_LAST - COMPAT_JAMO_FIRST + 1)  # 246..249
UNKNOWN_ID = SPECIAL_OFFSET + len(SPECIALS)  # 250
BASELINE_VOCAB_SIZE = UNKNOWN_ID + 1  # 251
PAD_ID = 0

_SPECIAL_IDS = {ord(ch): SPECIAL_OFFSET + i for i, ch in enumerate(SPECIALS)}


def is_syllable(char: str) -> bool:
    return len(char) == 1 and SYLLABLE_FIRST <= ord(char) <= SYLLABLE_LAST


def split_syllable(char: str) -> tuple[int, int, int]:
    """(choseong, jungseong, jongseong) indices; jongseong 0 means no final consonant."""
    offset = ord(char) - SYLLABLE_FIRST
    if not 0 <= offset <= SYLLABLE_LAST - SYLLABLE_FIRST:
        raise ValueError(f"{char!r} is not a precomposed Hangul syllable (U+AC00..U+D7A3)")
    return offset // (N_JUNGSEONG * N_JONGSEONG), (offset // N_JONGSEONG) % N_JUNGSEONG, offset % N_JONGSEONG


def decompose(text: str, *, compatibility: bool = False) -> str:
    """Syllables become conjoining jamo (exactly reversible by ``compose``).

    ``compatibility=True`` writes the baseline's compatibility letters instead (``"값"`` ->
    ``"ㄱㅏㅂㅅ"``), which reads better but is not reversible: ``"가"+"ㅏ"`` and ``"갸"`` can
    collide, and positions are lost.
    """
    out: list[str] = []
    for char in text:
        if not is_syllable(char):
            out.append(char)
            continue
        cho, jung, jong = split_syllable(char)
        if compatibility:
            out.append(CHOSEONG[cho] + JUNGSEONG[jung] + (JONGSEONG[jong - 1] if jong else ""))
        else:
            out.append(chr(CHOSEONG_BASE + cho) + chr(JUNGSEONG_BASE + jung))
            if jong:
                out.append(chr(JONGSEONG_BASE + jong))
    return "".join(out)


def compose(jamo: str) -> str:
    """Reassemble conjoining jamo into syllables; anything else passes through."""
    out: list[str] = []
    i, n = 0, len(jamo)
    while i < n:
        cho = ord(jamo[i]) - CHOSEONG_BASE
        jung = ord(jamo[i + 1]) - JUNGSEONG_BASE if i + 1 < n else -1
        if 0 <= cho < N_CHOSEONG and 0 <= jung < N_JUNGSEONG:
            jong = ord(jamo[i + 2]) - JONGSEONG_BASE if i + 2 < n else 0
            if not 0 < jong < N_JONGSEONG:
                jong = 0
            out.append(chr(SYLLABLE_FIRST + (cho * N_JUNGSEONG + jung) * N_JONGSEONG + jong))
            i += 3 if jong else 2
        else:
            out.append(jamo[i])
            i += 1
    return "".join(out)


def char_ids(char: str) -> list[int]:
    """The baseline ids of one character: 2 or 3 for a syllable, 1 otherwise."""
    code = ord(char)
    if SYLLABLE_FIRST <= code <= SYLLABLE_LAST:
        cho, jung, jong = split_syllable(char)
        ids = [cho, N_CHOSEONG + jung]
        if jong:
            ids.append(N_CHOSEONG + N_JUNGSEONG + jong - 1)
        return ids
    if code < 128:
        return [ASCII_OFFSET + code]
    if COMPAT_JAMO_FIRST <= code <= COMPAT_JAMO_LAST:
        return [COMPAT_OFFSET + code - COMPAT_JAMO_FIRST]
    return [_SPECIAL_IDS.get(code, UNKNOWN_ID)]


def baseline_ids(text: str) -> list[int]:
    """``decompose_str_as_one_hot`` of the 2018 baseline: unpadded, uncut."""
    ids: list[int] = []
    for char in text:
        ids.extend(char_ids(char))
    return ids


def encode_baseline(text: str, max_length: int) -> list[int]:
    """Exactly ``max_length`` ids: cut, or padded with 0 at the end, like the baseline's preprocess."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    ids = baseline_ids(text)[:max_length]
    return ids + [PAD_ID] * (max_length - len(ids))


def encode_baseline_batch(texts: Iterable[str], max_length: int) -> np.ndarray:
    """An int32 matrix (len(texts), max_length), the input of the baseline's embedding layer."""
    rows = [encode_baseline(text, max_length) for text in texts]
    return np.asarray(rows, dtype=np.int32).reshape(len(rows), max_length)


def baseline_symbols() -> list[str]:
    """What each of the 251 ids stands for (for inspecting a trained embedding)."""
    symbols = [f"cho:{c}" for c in CHOSEONG] + [f"jung:{c}" for c in JUNGSEONG]
    symbols += [f"jong:{c}" for c in JONGSEONG]
    symbols += [chr(code) for code in range(128)]
    symbols += [chr(code) for code in range(COMPAT_JAMO_FIRST, COMPAT_JAMO_LAST + 1)]
    symbols += list(SPECIALS) + ["<unk>"]
    assert len(symbols) == BASELINE_VOCAB_SIZE
    return symbols


def decode_baseline(ids: Sequence[int]) -> str:
    """Readable (lossy) text of baseline ids, for debugging; padding zeros at the end are dropped."""
    symbols = baseline_symbols()
    end = len(ids)
    while end and ids[end - 1] == PAD_ID:
        end -= 1
    return "".join(symbols[i].split(":", 1)[-1] for i in ids[:end])
