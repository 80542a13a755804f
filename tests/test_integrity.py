"""Competition integrity against a participant who probes the board or the evaluation.

The operator's server gives new competitions a daily limit; the organiser rounds public
scores; a participant (bob) whose ``infer`` prints, raises, returns or exits with its
test inputs gets none of them back, while the organiser still reads the whole log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Platform, running_platform, second_user
from nsml.evaluation.split import split_indices

MARK = "비밀"  # in every hidden test input, and nowhere else

SCRIPT = """
    import argparse, json, os, sys
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--behave", default="ok")
    config = parser.parse_args()

    def save(dir_name, **kwargs):
        open(os.path.join(dir_name, "model.json"), "w").write("{}")

    def load(dir_name, **kwargs):
        print("checkpoint loaded", flush=True)

    def infer(raw_data, **kwargs):
        leak = json.dumps(raw_data, ensure_ascii=False)
        if config.behave in ("print", "exit"):
            print("LEAK", leak, flush=True)
            print("LEAK", leak, file=sys.stderr, flush=True)
        if config.behave == "exit":
            os._exit(3)
        if config.behave == "raise":
            raise ValueError("LEAK " + leak)
        if config.behave == "echo":
            return [(0.5, text) for text in raw_data]
        return [(0.5, int("yes" in text)) for text in raw_data]

    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        print("ready to serve", flush=True)
        nsml.paused(scope=locals())
    else:
        nsml.save("best")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "integrity", NSML_DEFAULT_DAILY_LIMIT="3") as instance:
        yield instance


@pytest.fixture(scope="module")
def bob(server: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return second_user(server, "bob", tmp_path_factory.mktemp("bob"))


def _push(organiser: Platform, name: str, base: Path) -> tuple[list[int], list[int], list[str]]:
    """A pair task whose rule is right except on a few public and private inputs."""
    texts = [f"{MARK} 질문 {i}\t{'yes' if i % 2 == 0 else 'no'}" for i in range(30)]
    rule = [int("yes" in text) for text in texts]
    public, private = split_indices(name, len(texts), 0.5)
    wrong = set(public[:2]) | set(private[:3])
    labels = [1 - r if i in wrong else r for i, r in enumerate(rule)]
    folder = base / name
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    (folder / "train" / "train_data").write_text("a\tyes\nb\tno\n")
    (folder / "train" / "train_label").write_text("1\n0\n")
    (folder / "test" / "test_data").write_text("".join(f"{t}\n" for t in texts))
    (folder / "test" / "test_label").write_text("".join(f"{label}\n" for label in labels))
    organiser.nsml("dataset", "push", name, str(folder), "--metric", "accuracy")
    return [int(labels[i] == rule[i]) for i in public], [int(labels[i] == rule[i]) for i in private], texts


def _dataset(platform: Platform, name: str) -> dict:  # type: ignore[type-arg]
    [found] = [d for d in platform.json("dataset", "ls") if d["name"] == name]
    return found  # type: ignore[no-any-return]


def _train(bob: Platform, dataset: str, behave: str) -> str:
    name = bob.run(bob.project(f"{dataset}_{behave}", SCRIPT), dataset, f"--behave {behave}")
    assert bob.wait(name)["status"] == "exited", bob.nsml("logs", name).stdout
    return name


def test_default_daily_limit_and_rounded_public_scores(
    server: Platform, bob: Platform, tmp_path: Path
) -> None:
    public, private, _ = _push(server, "probe", tmp_path)
    assert _dataset(server, "probe")["daily_limit"] == 3  # the operator's default
    (tmp_path / "plain" / "train").mkdir(parents=True)
    (tmp_path / "plain" / "train" / "train_data").write_text("a\n")
    (tmp_path / "plain" / "train" / "train_label").write_text("1\n")
    server.nsml("dataset", "push", "plain", str(tmp_path / "plain"))
    assert _dataset(server, "plain")["daily_limit"] is None  # no test split, no competition
    assert _dataset(server, "demo_kin")["daily_limit"] is None  # its labels ship with the package
    changed = server.nsml("dataset", "set", "probe", "--round-public", "1").stdout
    assert "public scores rounded to 1 decimals" in changed and "daily limit 3" in changed
    refused = bob.nsml("dataset", "set", "probe", "--round-public", "6", check=False)
    assert refused.returncode == 1 and "only the organiser of probe" in refused.stderr

    full_public, full_private = sum(public) / len(public), sum(private) / len(private)
    shown = round(full_public, 1)
    assert shown != full_public and round(full_private, 1) != full_private  # the test means something
    session = _train(bob, "probe", "ok")
    for _ in range(3):
        assert f"score {shown:.6g} " in bob.nsml("submit", session, "best").stdout
    assert [row["score"] for row in bob.json("board", "probe")["rows"]] == [shown]
    mine = bob.json("board", "probe", "--private")
    assert [s["public_score"] for s in mine["submissions"]] == [shown] * 3
    fourth = bob.nsml("submit", session, "best", check=False)
    assert fourth.returncode == 1 and "the 3 submissions per day allowed on probe are used" in fourth.stderr

    server.nsml("dataset", "close", "probe")  # the final ranking: full precision
    [row] = bob.json("board", "probe")["rows"]
    assert row["score"] == pytest.approx(full_private) and row["owner"] == "bob"
    assert bob.json("board", "probe", "--private")["submissions"][0]["private_score"] == pytest.approx(
        full_private
    )


def test_a_hostile_infer_gets_no_test_input_back(server: Platform, bob: Platform, tmp_path: Path) -> None:
    _push(server, "secret", tmp_path)
    server.nsml("dataset", "set", "secret", "--daily-limit", "20")
    sessions = {behave: _train(bob, "secret", behave) for behave in ("print", "raise", "echo", "exit")}

    scored = bob.json("submit", sessions["print"], "best", "-b", "7")
    assert scored["status"] == "scored"
    shown = bob.nsml("logs", "-s", str(scored["id"])).stdout
    assert "checkpoint loaded" in shown and "ready to serve" in shown  # what one debugs
    assert "withheld from participants" in shown and "submission scored" in shown
    assert MARK not in shown and "LEAK" not in shown, shown
    full = server.nsml("logs", "-s", str(scored["id"])).stdout  # the organiser reads it all
    assert full.count("LEAK") >= 2 and MARK in full

    for behave in ("raise", "echo", "exit"):
        failed = bob.nsml("submit", sessions[behave], "best", check=False)
        assert failed.returncode == 1, failed.stdout
        record = bob.json("board", "secret", "--private")["submissions"][0]
        log = bob.nsml("logs", "-s", str(record["id"])).stdout
        for text in (failed.stdout, failed.stderr, record["reason"], log):
            assert MARK not in text and "LEAK" not in text, (behave, text)
        assert "submission failed" in log, log
    reasons = [s["reason"] for s in bob.json("board", "secret", "--private")["submissions"][:3]]
    assert "withheld" in reasons[0]  # exit: its last lines are not quoted
    assert reasons[1].startswith("prediction 1 is not a number"), reasons[1]  # echo: not quoted
    assert "the bound infer function raised an exception" in reasons[2]
    limits = bob.json("board", "secret", "--private")["limits"]
    assert limits["used_today"] == 4  # they had the test inputs when they failed: they count
    assert json.dumps(bob.json("board", "secret")).count(MARK) == 0
