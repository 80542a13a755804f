"""The SQL store, on SQLite and on a real PostgreSQL server: atomic numbering,
conditional transitions, cascading deletes, exact credit arithmetic under concurrency."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from nsml.store import Conflict, NotFound, SessionStatus, open_store
from nsml.store.sql.store import SqlStore

NOW = datetime.now(timezone.utc)


def test_migrations_create_the_schema_once(database_url: str) -> None:
    first = open_store(database_url)
    assert first.created is True
    first.close()
    again = open_store(database_url)
    assert again.created is False
    again.close()


def test_concurrent_sessions_get_distinct_gap_free_numbers(store: SqlStore) -> None:
    user = store.get_or_create_user("alice")
    dataset = store.create_dataset("kin", user.id, "accuracy", "", 10, 5, 100)

    def create(index: int) -> int:
        return store.create_session(user.id, dataset.id, "main.py", [], "", 0, f"t{index}").number

    with ThreadPoolExecutor(max_workers=20) as pool:
        numbers = sorted(pool.map(create, range(40)))
    assert numbers == list(range(1, 41))


def test_transitions_only_apply_from_the_expected_status(store: SqlStore) -> None:
    user = store.get_or_create_user("bob")
    dataset = store.create_dataset("movie", user.id, "mse", "", 10, 5, 100)
    session = store.create_session(user.id, dataset.id, "main.py", ["--x"], "d", 0, "tok")
    running = store.transition_session(
        session.id, SessionStatus.RUNNING, from_statuses=[SessionStatus.QUEUED], at=NOW
    )
    assert running is not None and running.started_at is not None
    stopped = store.transition_session(
        session.id, SessionStatus.STOPPED, from_statuses=[SessionStatus.RUNNING], reason="by request", at=NOW
    )
    assert stopped is not None and stopped.status is SessionStatus.STOPPED
    # the process's exit arrives after the stop: it must not overwrite "stopped"
    late = store.transition_session(
        session.id,
        SessionStatus.FAILED,
        from_statuses=[SessionStatus.QUEUED, SessionStatus.RUNNING],
        exit_code=-15,
        at=NOW,
    )
    assert late is None
    assert store.get_session_by_id(session.id).status is SessionStatus.STOPPED


def test_reports_checkpoints_and_delete(store: SqlStore) -> None:
    user = store.get_or_create_user("carol")
    dataset = store.create_dataset("kin", user.id, "accuracy", "", 10, 5, 100)
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 0, "tok")
    store.add_reports(
        session.id,
        [
            {"step": 0, "metrics": {"loss": 1.0}, "summary": True, "time": NOW},
            {"step": 1, "metrics": {"loss": 0.5, "note": "warm"}, "summary": False, "time": NOW},
        ],
    )
    current = store.get_session_by_id(session.id)
    assert current.summary == {"step": 0, "loss": 1.0}
    assert current.last_report == {"step": 1, "loss": 0.5, "note": "warm"}
    assert [(m.key, m.step, m.value) for m in store.list_metrics(session.id)] == [
        ("loss", 0, 1.0),
        ("loss", 1, 0.5),
        ("note", 1, None),
    ]
    store.put_checkpoint(session.id, "1", 2.0, current.last_report, 10, NOW)
    store.put_checkpoint(session.id, "1", 3.0, None, 20, NOW + timedelta(seconds=1))
    [checkpoint] = store.list_checkpoints(session.id)
    assert checkpoint.size_bytes == 20 and checkpoint.elapsed_s == 3.0
    store.delete_session(session.id)
    with pytest.raises(NotFound):
        store.get_session_by_id(session.id)
    assert store.list_metrics(session.id) == []


def test_a_report_batch_sent_twice_under_one_id_is_stored_once(store: SqlStore) -> None:
    """The SDK sends a batch again when the answer was lost; the id makes that harmless,
    also for two sends of it at once, and a session's removal takes its ids along."""
    user = store.get_or_create_user("rhea")
    dataset = store.create_dataset("twice", user.id, "accuracy", "", 10, 5, 100)
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 0, "tok")
    batch = [{"step": step, "metrics": {"loss": 1.0}, "time": NOW} for step in range(3)]
    with ThreadPoolExecutor(4) as pool:
        stored = list(pool.map(lambda _: store.add_reports(session.id, batch, "a" * 32), range(4)))
    assert sorted(stored) == [False, False, False, True]
    assert store.add_reports(session.id, batch[:1], "b" * 32) is True  # another batch, another id
    assert [m.step for m in store.list_metrics(session.id)] == [0, 0, 1, 2]
    store.delete_session(session.id)
    again = store.create_session(user.id, dataset.id, "main.py", [], "", 0, "tok2")
    assert store.add_reports(again.id, batch, "a" * 32) is True


def test_log_followers_learn_of_ended_sessions_from_one_read(store: SqlStore) -> None:
    """Fifty `nsml logs -f` streams waiting at once cost the store one read, not fifty;
    the end of one of their sessions reaches its follower on the next read."""
    import asyncio
    from contextlib import ExitStack

    from nsml.server.services import session_ends
    from nsml.server.services.session_ends import SessionEnds

    user = store.get_or_create_user("fay")
    dataset = store.create_dataset("follow", user.id, "accuracy", "", 10, 5, 100)
    ids = [store.create_session(user.id, dataset.id, "main.py", [], "", 0, f"t{n}").id for n in range(50)]
    reads: list[int] = []
    real = store.ended_sessions

    def counted(session_ids: list[int]) -> set[int]:
        reads.append(len(session_ids))
        return real(session_ids)

    store.ended_sessions = counted  # type: ignore[method-assign]
    ends = SessionEnds(store)

    async def follow() -> tuple[list[bool], list[bool]]:
        with ExitStack() as stack:
            for session_id in ids:
                stack.enter_context(ends.following(session_id))
            first = await asyncio.gather(*(ends.has_ended(i) for i in ids))
            store.transition_session(
                ids[7], SessionStatus.EXITED, from_statuses=[SessionStatus.QUEUED], exit_code=0, at=NOW
            )
            await asyncio.sleep(session_ends.CHECK_S)
            later = await asyncio.gather(*(ends.has_ended(i) for i in ids))
        return first, later

    first, later = asyncio.run(follow())
    assert not any(first) and reads == [50, 50]  # one read each round, for all fifty
    assert [i for i, ended in zip(ids, later, strict=True) if ended] == [ids[7]]
    assert store.ended_sessions([ids[7], ids[8], 10**6]) == {ids[7], 10**6}  # a removed one has ended too


def test_latest_metrics_of_many_sessions_in_one_call(store: SqlStore) -> None:
    """The sessions page shows each session's last value of every metric as a column."""
    user = store.get_or_create_user("lena")
    dataset = store.create_dataset("cols", user.id, "accuracy", "", 10, 5, 100)
    first, second, quiet = (
        store.create_session(user.id, dataset.id, "main.py", [], "", 0, f"tok{n}") for n in range(3)
    )
    store.add_reports(
        first.id,
        [
            {"step": 0, "metrics": {"loss": 1.0, "acc": 0.1}, "time": NOW},
            {"step": 1, "metrics": {"loss": 0.5, "note": "text"}, "time": NOW},
        ],
    )
    store.add_reports(second.id, [{"step": 3, "metrics": {"loss": 2.0}, "time": NOW}])
    assert store.latest_metrics([first.id, second.id, quiet.id]) == {
        first.id: {"loss": 0.5, "acc": 0.1},
        second.id: {"loss": 2.0},
        quiet.id: {},
    }
    assert store.latest_metrics([]) == {}


def test_tokens_expire_and_datasets_are_unique(store: SqlStore) -> None:
    user = store.get_or_create_user("dave")
    store.add_token(user.id, "h-live", NOW + timedelta(hours=1))
    store.add_token(user.id, "h-dead", NOW - timedelta(seconds=1))
    live = store.user_for_token("h-live", NOW)
    assert live is not None and live[0] == user and live[1] is not None and live[1] > NOW
    assert store.user_for_token("h-dead", NOW) is None
    assert store.user_for_token("unknown", NOW) is None
    store.create_dataset("kin", user.id, "accuracy", "", 1, 0, 1)
    with pytest.raises(Conflict):
        store.create_dataset("kin", user.id, "accuracy", "", 1, 0, 1)


def test_concurrent_credit_changes_add_up_exactly(store: SqlStore) -> None:
    user = store.get_or_create_user("erin")

    def change(index: int) -> float:
        return store.grant_credits(user.id, 1.0 if index % 2 else -0.25, f"change {index}", NOW)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(change, range(200)))
    balance = store.get_user("erin").credits
    assert balance == pytest.approx(100 * 1.0 - 100 * 0.25)
    events = store.credit_events(user.id, 1000)
    assert len(events) == 200 and sum(e.delta for e in events) == pytest.approx(balance)


def test_servers_starting_together_migrate_one_empty_database_once(database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        stores = list(pool.map(lambda _: open_store(database_url), range(4)))
    assert sorted(s.created for s in stores) == [False, False, False, True]
    for instance in stores:
        instance.close()


def test_concurrent_saves_and_cache_hits_are_all_recorded(store: SqlStore) -> None:
    user = store.get_or_create_user("frank")
    dataset = store.create_dataset("kin", user.id, "accuracy", "", 10, 5, 100)
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 0, "tok")
    store.add_cache(user.id, "k" * 64, "prepare", "kin", 10)

    def save_and_hit(index: int) -> None:
        store.put_checkpoint(session.id, "best", float(index), {"step": index}, index, NOW)
        assert store.get_cache(user.id, "k" * 64, hit=True) is not None

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(save_and_hit, range(60)))
    [best] = store.list_checkpoints(session.id)  # one row, whichever save came last
    assert best.name == "best" and best.summary == {"step": int(best.elapsed_s or 0)}
    entry = store.get_cache(user.id, "k" * 64)
    assert entry is not None and entry.hits == 60


def test_a_session_is_billed_up_to_its_end_once(store: SqlStore) -> None:
    user = store.get_or_create_user("gina")
    store.grant_credits(user.id, 10.0, "grant", NOW)
    dataset = store.create_dataset("kin", user.id, "accuracy", "", 10, 5, 100)
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 2, "tok")
    started = NOW - timedelta(minutes=3)
    store.transition_session(
        session.id, SessionStatus.RUNNING, from_statuses=[SessionStatus.QUEUED], at=started
    )
    assert store.charge_running(started + timedelta(minutes=1)) == []  # 1 minute x 2 slots
    ended = started + timedelta(minutes=1, seconds=30)
    store.transition_session(
        session.id, SessionStatus.EXITED, from_statuses=[SessionStatus.RUNNING], at=ended
    )
    assert store.charge_running(NOW) == []  # no longer running: the tick leaves it alone
    assert store.charge_session(session.id, ended) == pytest.approx(10 - 3.0)  # the last 30 s x 2
    assert store.charge_session(session.id, ended) is None  # billed already
    assert store.get_user("gina").credits == pytest.approx(7.0)


def test_an_account_keeps_its_webhook_until_removed(store: SqlStore) -> None:
    user = store.get_or_create_user("hooked")
    assert user.webhook_url is None
    url = "https://hooks.example.org/T0/B0?token=abc"
    assert store.update_user("hooked", webhook_url=url).webhook_url == url
    assert store.get_user("hooked").webhook_url == url
    assert url not in repr(store.get_user("hooked"))  # it may hold a secret
    assert store.update_user("hooked", webhook_url=None).webhook_url is None


def test_dataset_versions_race_and_removal_keeps_sessions(store: SqlStore) -> None:
    user = store.get_or_create_user("fran")
    dataset = store.create_dataset("versioned", user.id, "accuracy", "", 10, 5, 100)
    assert (dataset.version, dataset.rules, dataset.deadline) == (1, "", None)
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 0, "tok")
    with ThreadPoolExecutor(max_workers=4) as pool:  # four pushes of version 2 at once: one wins
        outcomes = list(
            pool.map(lambda _: _try(lambda: store.bump_dataset_version("versioned", 1, 20, 6, 200)), range(4))
        )
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "ok"]
    bumped = store.get_dataset("versioned")
    assert (bumped.version, bumped.train_size, bumped.test_size, bumped.size_bytes) == (2, 20, 6, 200)
    deadline = NOW + timedelta(days=1)
    updated = store.update_dataset("versioned", rules="# Rules", deadline=deadline)
    assert updated.rules == "# Rules" and updated.deadline == deadline and not updated.closed
    assert store.update_dataset("versioned", deadline=NOW - timedelta(seconds=1)).closed
    store.remove_dataset("versioned", NOW)
    assert store.dataset_was_removed("versioned")
    with pytest.raises(NotFound):
        store.get_dataset("versioned")
    with pytest.raises(NotFound):
        store.update_dataset("versioned", rules="")
    with pytest.raises(NotFound):
        store.remove_dataset("versioned", NOW)
    assert "versioned" not in {d.name for d in store.list_datasets()}
    with pytest.raises(Conflict):  # the name stays with the removed dataset's sessions
        store.create_dataset("versioned", user.id, "accuracy", "", 1, 0, 1)
    assert [s.id for s in store.list_sessions(dataset="versioned")] == [session.id]
    assert store.get_session("fran", "versioned", session.number).id == session.id


def _try(action: Callable[[], object]) -> str:
    try:
        action()
    except Conflict:
        return "conflict"
    return "ok"
