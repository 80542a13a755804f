"""The submission-limit rule, once, over plain values.

The store applies it inside the transaction that records a submission (so two racing
submissions cannot both take the last slot), and the server shows what it leaves
(``nsml submit``, the board). Neither copy can drift from the other, because there is
only this one; it imports nothing of the store or the server so it is testable alone.

"Today" is the sliding last 24 hours, not a calendar day: the day's allowance frees up
a day after the oldest submission in that window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DAY = timedelta(days=1)


@dataclass(frozen=True)
class SubmissionUsage:
    """What an owner has used on a dataset: the submissions that count against its limits."""

    used_total: int
    used_today: int
    oldest_today: datetime | None  # the oldest of the ones counted in used_today


@dataclass(frozen=True)
class LimitRefusal:
    """Why a submission is refused, and when the next one is allowed (None: never)."""

    message: str
    next_allowed: datetime | None


@dataclass(frozen=True)
class LimitStatus:
    """What the server shows about an owner's limits on a dataset."""

    daily_limit: int | None
    used_today: int
    total_limit: int | None
    used_total: int
    next_allowed: datetime | None  # set while the day's allowance is used up


def daily_window_start(at: datetime) -> datetime:
    """The start of the window ``used_today`` counts in, seen at ``at``."""
    return at - DAY


def daily_reset(daily_limit: int | None, usage: SubmissionUsage) -> datetime | None:
    """When the day's allowance frees up again; None while some of it is left."""
    if daily_limit is None or usage.used_today < daily_limit or usage.oldest_today is None:
        return None
    return usage.oldest_today + DAY


def limit_refusal(
    dataset: str, daily_limit: int | None, total_limit: int | None, usage: SubmissionUsage, at: datetime
) -> LimitRefusal | None:
    """Why a submission made at ``at`` is over the limits, or None if it is allowed.

    The total limit is checked first: once it is used up, no later day helps.
    """
    if total_limit is not None and usage.used_total >= total_limit:
        return LimitRefusal(f"all {total_limit} submissions allowed on {dataset} are used", None)
    if daily_limit is not None and usage.used_today >= daily_limit:
        # no oldest: a limit of 0 a day, so nothing was counted to age out
        next_allowed = daily_reset(daily_limit, usage) or at + DAY
        return LimitRefusal(
            f"the {daily_limit} submissions per day allowed on {dataset} are used; "
            f"the next one is allowed at {next_allowed.isoformat(timespec='seconds')}",
            next_allowed,
        )
    return None


def limit_status(daily_limit: int | None, total_limit: int | None, usage: SubmissionUsage) -> LimitStatus:
    """What is used of each limit and, if the day's allowance is used up, when it frees."""
    return LimitStatus(
        daily_limit=daily_limit,
        used_today=usage.used_today,
        total_limit=total_limit,
        used_total=usage.used_total,
        next_allowed=daily_reset(daily_limit, usage),
    )
