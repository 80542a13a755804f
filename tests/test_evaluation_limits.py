"""The submission-limit rule on plain values: what is refused, why, and what is shown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from nsml.evaluation.limits import (
    LimitRefusal,
    LimitStatus,
    SubmissionUsage,
    daily_reset,
    daily_window_start,
    limit_refusal,
    limit_status,
)

AT = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
OLDEST = AT - timedelta(hours=20)


def test_no_limits_allow_anything() -> None:
    usage = SubmissionUsage(used_total=1000, used_today=1000, oldest_today=OLDEST)
    assert limit_refusal("cup", None, None, usage, AT) is None
    assert limit_status(None, None, usage) == LimitStatus(None, 1000, None, 1000, None)


def test_room_left_under_both_limits_is_allowed() -> None:
    usage = SubmissionUsage(used_total=2, used_today=1, oldest_today=OLDEST)
    assert limit_refusal("cup", 2, 3, usage, AT) is None
    assert daily_reset(2, usage) is None


def test_a_used_up_total_is_refused_for_good_before_the_daily_limit() -> None:
    usage = SubmissionUsage(used_total=3, used_today=5, oldest_today=OLDEST)
    assert limit_refusal("cup", 2, 3, usage, AT) == LimitRefusal(
        "all 3 submissions allowed on cup are used", None
    )


def test_a_used_up_day_frees_a_day_after_its_oldest_submission() -> None:
    usage = SubmissionUsage(used_total=2, used_today=2, oldest_today=OLDEST)
    refused = limit_refusal("cup", 2, None, usage, AT)
    assert refused == LimitRefusal(
        "the 2 submissions per day allowed on cup are used; "
        "the next one is allowed at 2026-11-02T16:00:00+00:00",
        OLDEST + timedelta(days=1),
    )
    assert limit_status(2, None, usage).next_allowed == OLDEST + timedelta(days=1)


def test_a_limit_of_zero_a_day_refuses_until_a_day_later_but_shows_no_reset() -> None:
    usage = SubmissionUsage(used_total=0, used_today=0, oldest_today=None)
    refused = limit_refusal("cup", 0, None, usage, AT)
    assert refused is not None and refused.next_allowed == AT + timedelta(days=1)
    assert limit_status(0, None, usage) == LimitStatus(0, 0, None, 0, None)


def test_today_is_the_last_24_hours() -> None:
    assert daily_window_start(AT) == AT - timedelta(days=1)
