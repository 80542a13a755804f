"""Light normalisation for user-written Korean text (movie reviews, questions).

Reviews repeat letters for emphasis ("ㅋㅋㅋㅋㅋㅋ", "하하하하", "!!!!!"); capping the repeat keeps
the signal (it was repeated) while the vocabulary stays small. The 2018 hackathon data
also masked movie and actor names as ids such as ``mv00041958`` / ``ac00012345``; their
digits carry no meaning across movies, so they become one placeholder each.
"""

from __future__ import annotations

import re

MOVIE_TOKEN = "MOVIEID"
ACTOR_TOKEN = "ACTORID"

# Ids are letters+digits glued to Korean text ("mv00041958의"), so no \b: look at neighbours.
_MASKED_ID = re.compile(r"(?<![A-Za-z0-9])(mv|ac)\d{5,}(?![0-9])", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def replace_masked_ids(text: str) -> str:
    """Replace masked movie/actor ids by ``MOVIEID`` / ``ACTORID``."""
    return _MASKED_ID.sub(lambda m: MOVIE_TOKEN if m.group(1).lower() == "mv" else ACTOR_TOKEN, text)


def _repeat_pattern(max_repeat: int) -> re.Pattern[str]:
    # A unit of one or two non-digit, non-space characters repeated more than max_repeat times;
    # digits are left alone so that numbers ("1000000") keep their value.
    return re.compile(r"((?:(?![\d\s]).){1,2}?)\1{" + str(max_repeat) + ",}")


_PATTERNS: dict[int, re.Pattern[str]] = {}


def collapse_repeats(text: str, max_repeat: int = 2) -> str:
    """``"ㅋㅋㅋㅋㅋ"`` -> ``"ㅋㅋ"``, ``"ㅎㅋㅎㅋㅎㅋ"`` -> ``"ㅎㅋㅎㅋ"`` (for max_repeat=2)."""
    if max_repeat < 1:
        raise ValueError(f"max_repeat must be at least 1, got {max_repeat}")
    pattern = _PATTERNS.setdefault(max_repeat, _repeat_pattern(max_repeat))
    return pattern.sub(lambda m: m.group(1) * max_repeat, text)


def normalize(text: str, *, max_repeat: int = 2, mask_ids: bool = True) -> str:
    """Collapse whitespace, cap repeated characters, mask ids; ``max_repeat=0`` keeps repeats."""
    text = _SPACES.sub(" ", text).strip()
    if mask_ids:
        text = replace_masked_ids(text)
    if max_repeat:
        text = collapse_repeats(text, max_repeat)
    return text
