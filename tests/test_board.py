"""Ranking rules of the leaderboard, on a real store with several participants."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nsml.artifacts import FileArtifactStore
from nsml.server.services.submissions import SubmissionService
from nsml.server.settings import ServerSettings
from nsml.store import LimitReached, open_store

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _setup(tmp_path: Path, metric: str):  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path / 'nsml.db'}")
    settings = ServerSettings(home=tmp_path)
    service = SubmissionService(store, FileArtifactStore(tmp_path), None, settings, None)  # type: ignore[arg-type]
    owner = store.get_or_create_user("organiser")
    dataset = store.create_dataset("cup", owner.id, metric, "", 10, 10, 1)
    return store, service, dataset


def _scored(store, dataset, name: str, public: float, private: float, minutes: int):  # type: ignore[no-untyped-def]
    user = store.get_or_create_user(name)
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 0, f"{name}-{minutes}")
    submission = store.create_submission(dataset, user.id, session, "1", 10, T0 + timedelta(minutes=minutes))
    return store.update_submission(submission.id, status="scored", public_score=public, private_score=private)


def test_best_per_user_ties_to_the_earlier_and_private_after_close(tmp_path: Path) -> None:
    store, service, dataset = _setup(tmp_path, "accuracy")
    _scored(store, dataset, "alice", 0.80, 0.70, 1)
    _scored(store, dataset, "alice", 0.85, 0.60, 2)  # alice's best public
    _scored(store, dataset, "bob", 0.85, 0.90, 3)  # ties alice, later
    _scored(store, dataset, "carol", 0.70, 0.95, 4)
    rows = service.board(dataset)
    assert [(r.rank, r.owner, r.score, r.submissions) for r in rows] == [
        (1, "alice", 0.85, 2),
        (2, "bob", 0.85, 1),
        (3, "carol", 0.70, 1),
    ]
    closed = store.update_dataset("cup", closed_at=T0 + timedelta(days=1))
    # each user's best private score among their final selection (none chosen: their best
    # two by public score), alice's 0.70 rather than the 0.60 of her best-public entry
    assert [(r.owner, r.score) for r in service.board(closed)] == [
        ("carol", 0.95),
        ("bob", 0.90),
        ("alice", 0.70),
    ]


def test_lower_is_better_for_mse(tmp_path: Path) -> None:
    store, service, dataset = _setup(tmp_path, "mse")
    _scored(store, dataset, "alice", 2.5, 2.0, 1)
    _scored(store, dataset, "bob", 1.5, 3.0, 2)
    _scored(store, dataset, "bob", 4.0, 1.0, 3)
    assert [(r.owner, r.score) for r in service.board(dataset)] == [("bob", 1.5), ("alice", 2.5)]


def test_limits_count_scored_and_running_not_failed(tmp_path: Path) -> None:
    store, _, dataset = _setup(tmp_path, "accuracy")
    dataset = store.update_dataset("cup", daily_limit=2, total_limit=3)
    user = store.get_or_create_user("dave")
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 0, "dave-1")
    first = store.create_submission(dataset, user.id, session, "1", 10, T0)
    store.update_submission(first.id, status="failed", reason="boom")
    store.create_submission(dataset, user.id, session, "1", 10, T0 + timedelta(hours=1))
    store.create_submission(dataset, user.id, session, "1", 10, T0 + timedelta(hours=2))
    with pytest.raises(LimitReached) as refused:
        store.create_submission(dataset, user.id, session, "1", 10, T0 + timedelta(hours=3))
    assert refused.value.next_allowed == T0 + timedelta(hours=25)
    store.create_submission(dataset, user.id, session, "1", 10, T0 + timedelta(hours=26))
    with pytest.raises(LimitReached, match="all 3 submissions"):
        store.create_submission(dataset, user.id, session, "1", 10, T0 + timedelta(days=5))


def test_a_cached_board_follows_every_write_also_of_another_server(tmp_path: Path) -> None:
    """A board is ranked once and reused while its dataset's board version stands; a write
    through another store on the same database (another server) raises the version, and
    the next board shows it. A running submission's progress does not."""
    from nsml.server.auth import Principal

    store, service, dataset = _setup(tmp_path, "accuracy")
    other_server = open_store(f"sqlite:///{tmp_path / 'nsml.db'}")
    viewer = Principal(store.get_or_create_user("viewer"))
    first = _scored(store, dataset, "alice", 0.80, 0.70, 1)

    def board() -> list[tuple[str, float | None]]:
        current = store.get_dataset("cup")  # what the route reads first, every time
        return [(row.owner, row.score) for row in service.board_for(viewer, current).rows]

    assert board() == [("alice", 0.80)]
    assert service.boards.get(store.get_dataset("cup"), None) is not None  # cached
    other_server.update_submission(first.id, public_score=0.90)
    assert board() == [("alice", 0.90)]
    version = store.get_dataset("cup").board_version
    alice = store.get_or_create_user("alice")
    session = store.create_session(alice.id, dataset.id, "main.py", [], "", 0, "alice-again")
    running = store.create_submission(dataset, alice.id, session, "1", 10, T0)
    other_server.update_submission(running.id, status="running", progress=3)
    other_server.update_submission(running.id, progress=7)
    # queued, running, progress: none of it is on a board, which stays as it was
    assert store.get_dataset("cup").board_version == version
    other_server.update_submission(running.id, status="scored", public_score=0.6, private_score=0.6)
    assert store.get_dataset("cup").board_version == version + 1
    other_server.update_submission(running.id, status="running")  # re-scored: it leaves the board
    assert store.get_dataset("cup").board_version == version + 2
    other_server.update_submission(running.id, status="failed", reason="gone")
    _scored(other_server, dataset, "bob", 0.95, 0.50, 5)
    assert board() == [("bob", 0.95), ("alice", 0.90)]
    other_server.update_dataset("cup", closed_at=T0)  # closing ranks by private score at once
    assert board() == [("alice", 0.70), ("bob", 0.50)]


def test_viewers_of_a_stale_board_wait_for_one_ranking(tmp_path: Path) -> None:
    """Sixteen viewers ask at once for a board a score just changed: the submissions are
    read once, and everybody gets the new board."""
    from concurrent.futures import ThreadPoolExecutor

    from nsml.server.auth import Principal

    store, service, dataset = _setup(tmp_path, "accuracy")
    _scored(store, dataset, "alice", 0.80, 0.70, 1)
    viewer = Principal(store.get_or_create_user("viewer"))
    service.board_for(viewer, store.get_dataset("cup"))
    _scored(store, dataset, "bob", 0.90, 0.60, 2)
    current = store.get_dataset("cup")
    reads: list[str] = []
    real = store.list_submissions

    def counted(name: str, owner: str | None = None):  # type: ignore[no-untyped-def]
        reads.append(name)
        time.sleep(0.2)  # a slow read: the others arrive while it runs
        return real(name, owner)

    store.list_submissions = counted  # type: ignore[method-assign]
    with ThreadPoolExecutor(16) as pool:
        boards = list(pool.map(lambda _: service.board_for(viewer, current), range(16)))
    assert reads == ["cup"]
    assert all([row.owner for row in board.rows] == ["bob", "alice"] for board in boards)
