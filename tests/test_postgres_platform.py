"""The whole platform on PostgreSQL: sessions, checkpoints, a scored submission, and 20
sessions created at once getting distinct, gap-free numbers, billed to the last second."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import TRAIN_2018, Platform, running_platform, session_minutes

GRANT = 1000.0


@pytest.fixture(scope="module")
def on_postgres(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Platform]:
    with running_platform(
        tmp_path_factory, "pg", NSML_DB=postgres_url, NSML_MAX_CONCURRENT="2",
        NSML_CREDITS="1", NSML_CREDIT_INTERVAL_S="0.5",
    ) as instance:  # fmt: skip
        instance.nsml("admin", "credit", instance.json("whoami")["name"], str(GRANT))
        yield instance


def test_sessions_and_submissions_on_postgres(on_postgres: Platform) -> None:
    folder = on_postgres.project("pg_train", TRAIN_2018)
    name = on_postgres.run(folder, "demo_kin", "--epochs 2")
    assert on_postgres.wait(name)["status"] == "exited"
    assert [c["name"] for c in on_postgres.json("model", "ls", name)] == ["0", "1"]
    assert on_postgres.json("submit", name, "1")["status"] == "scored"
    assert on_postgres.json("board", "demo_kin")["rows"][0]["session"] == name
    assert not (on_postgres.home / "nsml.db").exists()  # the state is in PostgreSQL


def test_parallel_runs_get_distinct_gap_free_numbers(on_postgres: Platform) -> None:
    folder = on_postgres.project("pg_many", "print('hi')\n")
    before = {s["name"] for s in on_postgres.json("ps", "-a", "-d", "demo_movie")}
    with ThreadPoolExecutor(max_workers=20) as pool:
        names = list(pool.map(lambda _: on_postgres.run(folder, "demo_movie"), range(20)))
    numbers = sorted(int(n.rsplit("/", 1)[1]) for n in names)
    start = len(before) + 1
    assert numbers == list(range(start, start + 20))
    for name in names:
        on_postgres.wait(name, timeout=120)
    # every session of the module billed exactly its run time, under a ticker running throughout
    sessions = on_postgres.json("ps", "-a")
    spent = sum(session_minutes(s) * max(s["gpus"], 1) for s in sessions if s["started_at"])
    assert spent > 0
    assert GRANT - on_postgres.json("credit")["balance"] == pytest.approx(spent, rel=1e-6)
