"""fork and resume continue training from a checkpoint, through nsml.paused."""

from __future__ import annotations

import time

from conftest import TRAIN_2018, Platform


def _steps(platform: Platform, name: str) -> list[int]:
    return [int(c["summary"]["step"]) for c in platform.json("model", "ls", name)]


def test_fork_continues_from_the_checkpoint(platform: Platform) -> None:
    folder = platform.project("forkable", TRAIN_2018)
    parent = platform.run(folder, "demo_kin", "--epochs 3")
    platform.wait(parent)
    assert _steps(platform, parent) == [0, 1, 2]

    child = platform.json("fork", parent, "1", "-a", "--epochs 5", "-m", "longer")
    assert child["parent"] == f"{parent}:1"
    assert platform.wait(child["name"])["status"] == "exited"
    log = platform.nsml("logs", child["name"]).stdout
    # the checkpoint of epoch 1 was loaded (weights == 2), and training went on from --iteration 1
    assert "epoch 0 done" not in log and "epoch 1 done" in log and "epoch 4 done" in log
    assert "epoch 1 done, weights 3" in log and "epoch 4 done, weights 6" in log  # loaded, not fresh
    assert _steps(platform, child["name"]) == [1, 2, 3, 4]
    assert "(fork of " in platform.nsml("ps", "-a").stdout

    latest = platform.json("fork", parent)  # default: the latest checkpoint, the parent's args
    assert latest["parent"] == f"{parent}:2" and latest["args"] == ["--epochs", "3"]
    platform.wait(latest["name"])
    assert _steps(platform, latest["name"]) == [2]


def test_resume_runs_a_stopped_session_from_its_latest_checkpoint(platform: Platform) -> None:
    folder = platform.project("resumable", TRAIN_2018)
    name = platform.run(folder, "demo_kin", "--epochs 20 --sleep 0.3")  # ends alone after 6 s
    platform.wait(name, ("running",))
    deadline = time.monotonic() + 30
    while len(_steps(platform, name)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    platform.nsml("stop", name)
    saved = _steps(platform, name)
    assert 2 <= len(saved) < 20
    result = platform.nsml("resume", name)
    assert "resumed" in result.stdout
    assert platform.wait(name)["status"] == "exited"
    steps = _steps(platform, name)
    assert steps[-1] == 19 and set(range(20)) <= set(steps)
    log = platform.nsml("logs", name).stdout
    assert f"[nsml] session resumed from checkpoint {saved[-1]}" in log
    assert "epoch 19 done, weights 21" in log  # from the saved weights, redoing its epoch
    again = platform.nsml("resume", name, check=False)
    assert again.returncode == 0  # an ended session may be resumed again (it has nothing left to do)
    platform.wait(name)


def test_fork_and_resume_refuse_clearly(platform: Platform) -> None:
    folder = platform.project("nothing_saved", "import nsml\nprint('no checkpoints')\n")
    name = platform.run(folder)
    platform.wait(name)
    for command in (("fork", name), ("resume", name), ("fork", name, "7")):
        result = platform.nsml(*command, check=False)
        assert result.returncode == 1
        assert "no checkpoint" in result.stderr or "not found" in result.stderr, result.stderr


def test_checkpoint_names_with_colons_and_a_removed_parent(platform: Platform) -> None:
    script = """
        import argparse, json, os, nsml
        parser = argparse.ArgumentParser()
        parser.add_argument("--pause", type=int, default=0)
        parser.add_argument("--mode", default="train")
        parser.add_argument("--iteration", default="0")
        config = parser.parse_args()
        state = {"seen": None}
        nsml.bind(save=lambda d, **k: open(os.path.join(d, "s"), "w").write("saved"),
                  load=lambda d, **k: state.update(seen=open(os.path.join(d, "s")).read()))
        if config.pause:
            nsml.paused(scope=locals())
            print("LOADED", state["seen"], config.iteration, flush=True)
        else:
            nsml.save("best:v1")
    """
    parent = platform.run(platform.project("colons", script))
    platform.wait(parent)
    child = platform.json("fork", parent, "best:v1")
    assert platform.wait(child["name"])["status"] == "exited"
    assert "LOADED saved best:v1" in platform.nsml("logs", child["name"]).stdout
