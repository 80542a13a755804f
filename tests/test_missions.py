"""The missions run end to end on a real platform: nsml run → model ls → submit → board."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import Platform

MISSIONS = Path(__file__).resolve().parent.parent / "missions"


@pytest.mark.parametrize(
    ("mission", "dataset", "args", "metric", "bound"),
    [
        (
            "kin",
            "demo_kin",
            "--model ensemble --members tfidf,siamese --epochs 2 --hidden 32",
            "accuracy",
            0.6,
        ),
        ("movie_review", "demo_movie", "--model bigru --epochs 2 --hidden 32", "mse", 12.0),
    ],
)
def test_mission_trains_and_scores_on_the_hidden_test(
    platform: Platform, mission: str, dataset: str, args: str, metric: str, bound: float
) -> None:
    session = platform.json("run", "-d", dataset, "-e", "main.py", "-a", args, cwd=MISSIONS / mission)["name"]
    ended = platform.wait(session, timeout=120)
    log = platform.nsml("logs", session).stdout
    assert ended["status"] == "exited", log
    assert f"valid/{metric}" in str(ended["summary"]), ended
    assert [c["name"] for c in platform.json("model", "ls", session)] == ["best"]

    preview = platform.json("submit", session, "best", "-t")
    assert len(preview) == 10
    result = platform.nsml("submit", session, "best")
    score = float(re.search(r"score ([0-9.e+-]+)", result.stdout).group(1))  # type: ignore[union-attr]
    # a trained model beats chance (kin) / predicting a constant far off (movie) on unseen test data
    assert score >= bound if metric == "accuracy" else score <= bound, result.stdout
    [row] = platform.json("board", dataset)["rows"]
    assert row["session"] == session and row["score"] == pytest.approx(score, rel=1e-4)
