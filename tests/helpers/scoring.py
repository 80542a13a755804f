"""The competition loop's known answer: a script whose ``infer`` is a fixed rule of the
input (``md5`` of the text), so a test computes the scores a submission must get itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from nsml.evaluation.split import split_indices

if TYPE_CHECKING:
    from conftest import Platform

DEMO = Path(__file__).resolve().parents[2] / "src" / "nsml" / "datasets" / "demo"

# A 2018-style script whose infer is a known function of the input, so the test can
# compute the expected score itself; --behave picks a failure mode.
RULE_SCRIPT = """
    import argparse, hashlib, json, math, os, sys, time
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--task", default="kin")
    parser.add_argument("--behave", default="ok")
    config = parser.parse_args()
    state = {"bias": 0}

    def rule(text):
        digest = int(hashlib.md5(text.encode()).hexdigest(), 16)
        return digest % 2 if config.task == "kin" else 1 + digest % 10

    def save(dir_name, **kwargs):
        json.dump(state, open(os.path.join(dir_name, "state.json"), "w"))

    def load(dir_name, **kwargs):
        if config.behave == "loadfail":
            raise RuntimeError("checkpoint format from the future")
        state.update(json.load(open(os.path.join(dir_name, "state.json"))))

    def infer(raw_data, **kwargs):
        print(f"infer called with {len(raw_data)} inputs", flush=True)
        if config.behave == "raise":
            raise ZeroDivisionError("boom in infer")
        if config.behave == "sleep":
            time.sleep(60)
        if config.behave == "hostile":
            print("HOSTILE", json.dumps(hunt()), flush=True)
        if config.behave == "count":
            raw_data = raw_data[:-1]
        predictions = [(0.5, rule(text) + state["bias"]) for text in raw_data]
        if config.behave == "nan":
            predictions[-1] = (0.5, float("nan"))
        return predictions

    def hunt():
        # what a cheat would try: names on the whole file system, the contents of every
        # small file it may write to or was given, the environment and the arguments
        found = [f"env {k}={v}" for k, v in os.environ.items() if "label" in (k + v).lower()]
        found += [f"argv {a}" for a in sys.argv if "label" in a.lower()]
        for root, dirs, files in os.walk("/"):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
            for name in files:
                if name in ("test_label", "test_data", "train_label", "nsml.db", "server.json"):
                    found.append(os.path.join(root, name))
        seen = []
        python = tuple(p for p in {sys.prefix, sys.base_prefix, *sys.path[1:]} if p.startswith("/"))
        for top in ("/nsml", "/tmp", os.path.expanduser("~"), os.getcwd()):
            for root, dirs, files in os.walk(top):
                # the read-only Python environment may lie below /tmp: its files hold no label
                dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(python)]
                for name in files:
                    path = os.path.join(root, name)
                    if os.path.isfile(path) and os.path.getsize(path) < 65536:
                        seen.append(open(path, "rb").read().decode("utf-8", "replace"))
        print("SEEN", json.dumps(seen), flush=True)
        return found

    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())
    if config.behave != "nopause":
        state["bias"] = 0
        nsml.report(summary=True, step=0, loss=0.1)
        nsml.save("best")
"""


def rule_prediction(text: str, task: str) -> float:
    """What RULE_SCRIPT predicts for ``text`` (a class for kin, a rating for movie)."""
    digest = int(hashlib.md5(text.encode()).hexdigest(), 16)
    return float(digest % 2 if task == "kin" else 1 + digest % 10)


def rule_scores(folder: Path, dataset: str, task: str) -> tuple[float, float]:
    """(public, private) scores of RULE_SCRIPT on the test split in ``folder``."""
    inputs = (folder / "test" / "test_data").read_text().splitlines()
    labels = [float(x) for x in (folder / "test" / "test_label").read_text().splitlines()]
    predictions = [rule_prediction(text, task) for text in inputs]
    public, private = split_indices(dataset, len(labels), 0.5)

    def score(indices: list[int]) -> float:
        if task == "kin":
            return sum(labels[i] == predictions[i] for i in indices) / len(indices)
        return sum((labels[i] - predictions[i]) ** 2 for i in indices) / len(indices)

    return score(public), score(private)


def train_rule_session(platform: Platform, dataset: str, task: str, behave: str = "ok") -> str:
    """A finished RULE_SCRIPT session on ``dataset``, with its checkpoint ``best``."""
    folder = platform.project(f"submit_{task}_{behave}", RULE_SCRIPT)
    name = platform.run(folder, dataset, f"--task {task} --behave {behave}")
    assert platform.wait(name)["status"] == "exited", platform.nsml("logs", name).stdout
    return name


def assert_test_labels_out_of_reach(platform: Platform, tmp_path: Path) -> None:
    """A submission whose ``infer`` hunts the file system for the hidden test labels, on
    whichever runner ``platform`` uses, finds none of them."""
    folder = tmp_path / "secret"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    (folder / "train" / "train_data").write_text("좋다\n싫다\n")
    (folder / "train" / "train_label").write_text("10\n1\n")
    (folder / "test" / "test_data").write_text("".join(f"리뷰 {i}\n" for i in range(40)))
    (folder / "test" / "test_label").write_text("".join(f"{1 + (i * 7) % 10}\n" for i in range(40)))
    platform.nsml("dataset", "push", "secret_movie", str(folder), "--metric", "mse")
    session = train_rule_session(platform, "secret_movie", "movie", "hostile")
    platform.nsml("submit", session, "best", "-b", "40")
    record = platform.json("board", "secret_movie", "--private")["submissions"][0]
    log = platform.nsml("logs", "-s", str(record["id"])).stdout
    assert "HOSTILE " in log, f"{record}\n{log}"
    found = log.split("HOSTILE ", 1)[1].splitlines()[0]
    assert found == "[]", found
    seen = json.loads(log.split("SEEN ", 1)[1].splitlines()[0])
    assert seen, "the hunt read the files it could reach"
    labels = (folder / "test" / "test_label").read_text()
    assert not any(labels.strip() in content for content in seen)
    assert labels.strip() not in log
