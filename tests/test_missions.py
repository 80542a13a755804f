"""The missions run end to end on a real platform: nsml run → model ls → submit → board."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import NSML, Platform

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


def test_an_ensemble_session_averages_checkpoints_of_earlier_sessions(platform: Platform) -> None:
    folder = MISSIONS / "kin"
    members = []
    for args in ("--model tfidf", "--model mlp --epochs 1 --hidden 16"):
        name = platform.json("run", "-d", "demo_kin", "-e", "main.py", "-a", args, cwd=folder)["name"]
        assert platform.wait(name, timeout=120)["status"] == "exited", platform.nsml("logs", name).stdout
        members.append(f"{name}:best")
    refs = ",".join(members)
    name = platform.json("run", "-d", "demo_kin", "-e", "main.py", "-a", f"--ensemble-of {refs}", cwd=folder)[
        "name"
    ]
    ended = platform.wait(name, timeout=120)
    log = platform.nsml("logs", name).stdout
    assert ended["status"] == "exited", log
    assert f"averaging 2 checkpoints (tfidf, mlp): {refs}" in log and "training" not in log
    result = platform.json("submit", name, "best")
    assert result["status"] == "scored" and result["public_score"] >= 0.5, result

    wrong = platform.json("run", "-d", "demo_kin", "-e", "main.py", "-a", "--ensemble-of kin/1", cwd=folder)
    failed = platform.wait(wrong["name"], timeout=120)
    assert failed["status"] == "failed"
    assert "is not SESSION:CHECKPOINT" in platform.nsml("logs", wrong["name"]).stdout


def test_a_mission_runs_off_the_platform_on_the_2018_sample(tmp_path: Path, shared_data: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("NSML_")}
    result = subprocess.run(
        [sys.executable, str(MISSIONS / "kin" / "main.py"), "--model", "tfidf"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sample = (shared_data / "hackathon2018_sample" / "kin" / "train" / "train_data").read_text()
    assert f"training tfidf on {len(sample.splitlines())} examples" in result.stdout
    assert re.search(r"validation accuracy [01]\.\d{4}", result.stdout), result.stdout
    assert re.search(r"validation accuracy [01]\.\d{4} on held-out topics", result.stdout), result.stdout
    assert re.search(r"same-topic different questions in validation: accuracy [01]\.\d{4}", result.stdout)
    assert (tmp_path / "nsml_local" / "checkpoints" / "best" / "pipeline.json").is_file()


def test_make_demo_builds_kin_trains_two_models_and_shows_the_board(
    platform: Platform, shared_data: Path
) -> None:
    """``make demo``'s script, on a few hundred training pairs so it stays cheap."""
    import subprocess

    script = MISSIONS.parent / "examples" / "demo.sh"
    env = {**platform.env, "NSML": NSML, "DEMO_MAX_TRAIN": "300"}
    result = subprocess.run(
        ["bash", str(script)], cwd=platform.workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dataset kin built from" in result.stdout and "6815 train, 758 test" in result.stdout
    assert "valid/accuracy" in result.stdout and "train/rows=300" in result.stdout
    scores = [float(s) for s in re.findall(r"best: score ([0-9.]+)", result.stdout)]
    assert len(scores) == 2 and max(scores) > 0.6, result.stdout
    assert "$ nsml board kin" in result.stdout
    assert "Warning" not in result.stdout  # a newcomer's first log holds no library noise
    [row] = platform.json("board", "kin")["rows"]
    assert row["score"] == pytest.approx(max(scores), rel=1e-4)
