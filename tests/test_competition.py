"""Submit, score and rank: the hidden-test competition loop, through the real CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import Platform
from nsml.evaluation.split import split_indices

DEMO = Path(__file__).resolve().parent.parent / "src" / "nsml" / "datasets" / "demo"

# A 2018-style script whose infer is a known function of the input, so the test can
# compute the expected score itself; --behave picks a failure mode.
SCRIPT = """
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


def _expected(text: str, task: str) -> float:
    digest = int(hashlib.md5(text.encode()).hexdigest(), 16)
    return float(digest % 2 if task == "kin" else 1 + digest % 10)


def _expected_scores(folder: Path, dataset: str, task: str) -> tuple[float, float]:
    inputs = (folder / "test" / "test_data").read_text().splitlines()
    labels = [float(x) for x in (folder / "test" / "test_label").read_text().splitlines()]
    predictions = [_expected(text, task) for text in inputs]
    public, private = split_indices(dataset, len(labels), 0.5)

    def score(indices: list[int]) -> float:
        if task == "kin":
            return sum(labels[i] == predictions[i] for i in indices) / len(indices)
        return sum((labels[i] - predictions[i]) ** 2 for i in indices) / len(indices)

    return score(public), score(private)


def _train(platform: Platform, dataset: str, task: str, behave: str = "ok") -> str:
    folder = platform.project(f"submit_{task}_{behave}", SCRIPT)
    name = platform.run(folder, dataset, f"--task {task} --behave {behave}")
    assert platform.wait(name)["status"] == "exited", platform.nsml("logs", name).stdout
    return name


@pytest.fixture(scope="module")
def kin_session(platform: Platform) -> str:
    return _train(platform, "demo_kin", "kin")


def test_full_loop_on_demo_kin_and_demo_movie(platform: Platform, kin_session: str) -> None:
    for dataset, task, session in (
        ("demo_kin", "kin", kin_session),
        ("demo_movie", "movie", _train(platform, "demo_movie", "movie")),
    ):
        assert [c["name"] for c in platform.json("model", "ls", session)] == ["best"]
        preview = platform.json("submit", session, "best", "-t")
        inputs = (DEMO / dataset / "test" / "test_data").read_text().splitlines()
        assert [row["input"] for row in preview] == inputs[:10]
        assert [row["prediction"] for row in preview] == [_expected(t, task) for t in inputs[:10]]
        assert "Prediction" in platform.nsml("submit", session, "best", "-t").stdout
        assert platform.json("board", dataset)["rows"] == []  # -t posts nothing

        result = platform.nsml("submit", session, "best", "-b", "7")
        public, private = _expected_scores(DEMO / dataset, dataset, task)
        assert f"score {public:.6g}" in result.stdout
        board = platform.json("board", dataset)
        assert board["ranked_by"] == "public"
        [row] = board["rows"]
        assert row["rank"] == 1 and row["session"] == session and row["checkpoint"] == "best"
        assert row["score"] == pytest.approx(public)
        assert set(row) == {
            "rank",
            "owner",
            "score",
            "session",
            "checkpoint",
            "submitted_at",
            "submissions",
            "last_submitted_at",
        }
        mine = platform.json("board", dataset, "--private")
        assert mine["submissions"][0]["status"] == "scored"
        assert mine["submissions"][0]["private_score"] is None  # hidden until closed
        assert "hidden" in platform.nsml("board", dataset, "--private").stdout


def test_failure_modes_give_reasons_and_keep_earlier_scores(platform: Platform, kin_session: str) -> None:
    before = platform.json("board", "demo_kin")["rows"]
    assert before, "the full loop scored a submission first"
    platform.nsml("dataset", "set", "demo_kin", "--eval-timeout", "8")
    cases = {
        # after the test inputs went out the traceback is withheld (it could carry them);
        # the organiser (this user is the admin) still reads it in the log
        "raise": ["bound infer function raised an exception", "withheld from participants"],
        "count": ["infer returned 59 predictions for the 60 inputs 1..60"],
        "nan": ["prediction 60 is not a finite number"],
        "loadfail": ["bound load function failed", "checkpoint format from the future"],
        "sleep": ["exceeded its time limit of 8 s"],
        "nopause": ["nsml.paused(scope=locals())"],
    }
    try:
        for behave, words in cases.items():
            if behave == "nopause":
                folder = platform.project("nopause", SCRIPT.replace("nsml.paused(scope=locals())", "pass"))
                session = platform.run(folder, "demo_kin", "--task kin")
                platform.wait(session)
            else:
                session = _train(platform, "demo_kin", "kin", behave)
            result = platform.nsml("submit", session, "best", check=False)
            assert result.returncode == 1, result.stdout
            assert result.stderr.startswith("Error: submission"), result.stderr
            for word in words:
                assert word in result.stderr, (behave, result.stderr)
            record = platform.json("board", "demo_kin", "--private")["submissions"][0]
            assert record["status"] == "failed" and words[0] in record["reason"]
            if behave == "raise":
                log = platform.nsml("logs", "-s", str(record["id"])).stdout
                assert "Traceback" in log and "ZeroDivisionError" in log
    finally:
        platform.nsml("dataset", "set", "demo_kin", "--eval-timeout", "600")
    assert platform.json("board", "demo_kin")["rows"] == before


def test_test_labels_stay_out_of_reach(platform: Platform, tmp_path: Path) -> None:
    folder = tmp_path / "secret"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    (folder / "train" / "train_data").write_text("좋다\n싫다\n")
    (folder / "train" / "train_label").write_text("10\n1\n")
    (folder / "test" / "test_data").write_text("".join(f"리뷰 {i}\n" for i in range(40)))
    (folder / "test" / "test_label").write_text("".join(f"{1 + (i * 7) % 10}\n" for i in range(40)))
    platform.nsml("dataset", "push", "secret_movie", str(folder), "--metric", "mse")
    session = _train(platform, "secret_movie", "movie", "hostile")
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


def test_limits_and_closing_reveal_the_private_ranking(
    platform: Platform, kin_session: str, tmp_path: Path
) -> None:
    folder = tmp_path / "cup"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    (folder / "train" / "train_data").write_text("a\tb\nc\td\n")
    (folder / "train" / "train_label").write_text("1\n0\n")
    inputs = [f"질문 {i}\t질문 {i + 1}" for i in range(30)]
    (folder / "test" / "test_data").write_text("".join(f"{t}\n" for t in inputs))
    (folder / "test" / "test_label").write_text("".join(f"{int(_expected(t, 'kin'))}\n" for t in inputs))
    platform.nsml("dataset", "push", "cup", str(folder), "--metric", "accuracy")
    platform.nsml("dataset", "set", "cup", "--daily-limit", "3")
    good = _train(platform, "cup", "kin")
    broken = _train(platform, "cup", "kin", "raise")
    no_load = _train(platform, "cup", "kin", "loadfail")

    assert platform.nsml("submit", no_load, "best", check=False).returncode == 1  # does not count
    assert platform.nsml("submit", broken, "best", check=False).returncode == 1  # counts: infer had
    platform.nsml("submit", good, "best")  # the test inputs when it failed
    platform.nsml("submit", good, "best")
    refused = platform.nsml("submit", good, "best", check=False)
    assert refused.returncode == 1
    assert "3 submissions per day" in refused.stderr and "next one is allowed at" in refused.stderr
    private = platform.json("board", "cup", "--private")
    assert private["limits"]["used_today"] == 3 and private["limits"]["next_allowed"]
    assert [s["status"] for s in private["submissions"]] == ["scored", "scored", "failed", "failed"]
    assert "0 of 3 left today" in platform.nsml("board", "cup", "--private").stdout

    platform.nsml("dataset", "close", "cup")
    board = platform.json("board", "cup")
    assert board["closed"] and board["ranked_by"] == "private"
    assert board["rows"][0]["score"] == 1.0  # the rule reproduces every label
    assert platform.json("board", "cup", "--private")["submissions"][0]["private_score"] == 1.0
    after = platform.nsml("submit", good, "best", check=False)
    assert after.returncode == 1 and "closed" in after.stderr

    platform.nsml("rm", good, "-y")  # submissions are kept for good
    assert platform.json("board", "cup")["rows"][0]["session"] == good
    assert len(platform.json("board", "cup", "--private")["submissions"]) == 4


def test_infer_on_own_inputs(platform: Platform, kin_session: str) -> None:
    texts = ["재즈란 뭔가요?\t재즈는 어떤 음악인가요?", "라면 맛있게 끓이는 법\t라면 물 양"]
    result = platform.json("infer", kin_session, "best", input="\n".join(texts) + "\n")
    assert [row["prediction"][1] for row in result] == [_expected(t, "kin") for t in texts]
    empty = platform.nsml("infer", kin_session, "best", input="", check=False)
    assert empty.returncode == 1 and "no inputs" in empty.stderr


def test_submitting_needs_a_checkpoint_and_a_test_split(
    platform: Platform, kin_session: str, tmp_path: Path
) -> None:
    missing = platform.nsml("submit", kin_session, "nope", check=False)
    assert missing.returncode == 1 and "checkpoint 'nope' not found" in missing.stderr
    folder = tmp_path / "train_only"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "train_data").write_text("a\tb\n")
    (folder / "train" / "train_label").write_text("1\n")
    platform.nsml("dataset", "push", "train_only", str(folder))
    session = _train(platform, "train_only", "kin")
    refused = platform.nsml("submit", session, "best", check=False)
    assert refused.returncode == 1 and "has no test split" in refused.stderr
