"""What a new participant trips over first, each checked against a real server and CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import NSML, ROOT, TRAIN_2018, Platform, running_platform

# infer waits in load (before any test input is sent) so that Ctrl-C finds the
# submission running; --label picks what infer answers
SLOW_LOAD = (
    TRAIN_2018.replace(
        'parser.add_argument("--tag", default="")',
        'parser.add_argument("--tag", default="")\n'
        '    parser.add_argument("--load-sleep", type=float, default=0)\n'
        '    parser.add_argument("--label", default="1")',
    )
    .replace(
        "            state.update(json.load(handle))",
        "            state.update(json.load(handle))\n        time.sleep(config.load_sleep)",
    )
    .replace(
        "return [(0.5, 1) for _ in raw_data]",
        "return [(0.5, float(config.label)) for _ in raw_data]",
    )
)


def _wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _shown_log(platform: Platform, submission: int) -> str:
    """The participant's copy of an evaluation log (`logs -s` shows an admin the full one)."""
    path = platform.home / "evaluations" / f"submission-{submission}" / "shown.txt"
    return path.read_text() if path.exists() else ""


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "one_slot_traps", NSML_MAX_CONCURRENT="1") as instance:
        yield instance


# 1. Ctrl-C during submit ------------------------------------------------------------------
def test_ctrl_c_during_submit_cancels_the_submission(platform: Platform) -> None:
    folder = platform.project("slow_load", SLOW_LOAD)
    name = platform.run(folder, args="--epochs 1 --load-sleep 60")
    assert platform.wait(name)["status"] == "exited"
    before = platform.json("board", "demo_kin", "--private")["limits"]["used_total"]

    process = subprocess.Popen(
        [NSML, "submit", name, "0"],
        cwd=platform.workdir,
        env=platform.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background (`make test &`) ignores SIGINT, and so would the
        # CLI, as a user's `nsml submit &` does: give it Ctrl-C as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        mine = _wait_for(
            lambda: [
                s
                for s in platform.json("board", "demo_kin", "--private")["submissions"]
                if s["session_name"] == name and s["status"] == "running"
            ],
            "the submission to run",
        )
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, (out, err)
    assert "Aborted" not in err and "Traceback" not in err
    assert f"submission {mine[0]['id']} cancelled" in err
    record = _wait_for(
        lambda: next(
            s
            for s in platform.json("board", "demo_kin", "--private")["submissions"]
            if s["id"] == mine[0]["id"]
        ),
        "the record",
    )
    assert record["status"] == "cancelled"
    assert platform.json("board", "demo_kin", "--private")["limits"]["used_total"] == before
    # the evaluation stopped at once (its load sleeps a minute) and says why
    _wait_for(
        lambda: "submission cancelled by its owner" in _shown_log(platform, record["id"]),
        "the evaluation to stop",
        timeout=20,
    )

    from nsml.client.api import ApiClient, ApiError

    info = platform.server_info()
    with ApiClient(info["url"], info["token"]) as api:
        with pytest.raises(ApiError, match="is cancelled; only a queued or running one can be cancelled"):
            api.cancel_submission(record["id"])
        with pytest.raises(ApiError, match="not found"):
            api.cancel_submission(999_999)


# 2. submit -t checks predictions like the real submission ----------------------------------
def test_dry_run_applies_the_real_prediction_checks(platform: Platform) -> None:
    folder = platform.project("unknown_class", SLOW_LOAD)
    name = platform.run(folder, args="--epochs 1 --label 7")
    assert platform.wait(name)["status"] == "exited"
    dry = _one_line_error(platform.nsml("submit", name, "0", "-t", check=False))
    assert "prediction 1 is 7.0, not one of the classes 0, 1" in dry
    real = platform.nsml("submit", name, "0", check=False)
    assert real.returncode == 1 and "prediction 1 is not one of the classes 0, 1" in real.stderr

    fine = platform.run(folder, args="--epochs 1")
    platform.wait(fine)
    assert platform.json("submit", fine, "0", "-t")[0]["prediction"] == 1.0


# 3. unreadable inputs ----------------------------------------------------------------------
def test_infer_with_a_missing_or_binary_file_says_so(platform: Platform, tmp_path: Path) -> None:
    missing = _one_line_error(
        platform.nsml("infer", "x/1", "0", "-i", str(tmp_path / "nope.txt"), check=False)
    )
    assert "nope.txt" in missing
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9\n".encode("latin-1"))
    assert "UTF-8" in _one_line_error(platform.nsml("infer", "x/1", "0", "-i", str(binary), check=False))


def test_dataset_build_with_non_utf8_files_says_so(platform: Platform, tmp_path: Path) -> None:
    source = tmp_path / "kin_source"
    source.mkdir()
    for part in ("train.txt", "validation.txt", "test.txt"):
        (source / part).write_bytes("question1\tquestion2\tis_duplicate\n\xe9\t\xe9\t0\n".encode("latin-1"))
    result = platform.nsml("dataset", "build", "kin", "--source", str(source), "--as", "kin_bad", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]  # after progress
    assert len(errors) == 1 and "UTF-8" in errors[0] and ".txt" in errors[0], result.stderr


# 4. a failed login changes nothing ---------------------------------------------------------
def test_failed_login_keeps_the_previous_configuration(platform: Platform, tmp_path: Path) -> None:
    from nsml.client.connection import write_client_file

    platform.nsml("whoami")  # starts the server
    info = platform.server_info()
    client = Platform(tmp_path / "client-home", tmp_path)
    write_client_file(client.home, info["url"], info["token"], "root")
    saved = (client.home / "client.json").read_bytes()
    before = client.nsml("whoami").stdout

    failed = client.nsml(
        "login", info["url"], "-u", "nobody", "--password-stdin", input="wrong\n", check=False
    )
    line = _one_line_error(failed)
    assert "login failed" in line and f"still logged in to {info['url']}" in line
    assert (client.home / "client.json").read_bytes() == saved
    assert client.nsml("whoami").stdout == before

    fresh = Platform(tmp_path / "fresh-home", tmp_path)
    failed = fresh.nsml("login", "http://127.0.0.1:9", "--password-stdin", input="pw\n", check=False)
    line = _one_line_error(failed)
    assert "not logged in" in line and "embedded" in line
    assert not (fresh.home / "client.json").exists() and not (fresh.home / "server.json").exists()


# 5. queued sessions say so ----------------------------------------------------------------
def test_queued_session_says_where_it_waits(one_slot: Platform) -> None:
    folder = one_slot.project("queue_notice", TRAIN_2018)
    blocker = one_slot.run(folder, args="--epochs 1000 --sleep 0.1")
    one_slot.wait(blocker, ("running",))
    started = one_slot.nsml("run", "-d", "demo_kin", "-a", "--epochs 1", cwd=folder).stdout
    assert "queued (position 1: " in started and "started" not in started
    waiting = started.split()[1]

    follower = subprocess.Popen(
        [NSML, "logs", "-f", waiting],
        cwd=one_slot.workdir,
        env=one_slot.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stderr is not None
        notice = follower.stderr.readline()
        assert f"{waiting} is queued (position 1: " in notice
        one_slot.nsml("stop", blocker)
        out, _ = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0 and "epoch 0 done" in out


# 6. server stop with running sessions -------------------------------------------------------
def test_server_stop_asks_before_killing_sessions(one_slot: Platform) -> None:
    folder = one_slot.project("stop_guard", TRAIN_2018)
    name = one_slot.run(folder, args="--epochs 1000 --sleep 0.1")
    one_slot.wait(name, ("running",))
    refused = _one_line_error(one_slot.nsml("server", "stop", check=False))
    assert "1 session is running" in refused and "-y" in refused
    assert one_slot.session(name)["status"] == "running"
    assert "Server stopped." in one_slot.nsml("server", "stop", "-y").stdout
    one_slot.nsml("server", "start")
    assert "Server stopped." in one_slot.nsml("server", "stop").stdout  # nothing running: no question


def test_a_stale_server_file_never_signals_the_process_that_got_its_pid(tmp_path: Path) -> None:
    """A server killed outright leaves server.json behind, and its pid is soon another
    process's: one that looks like a server of another home is left alone."""
    from nsml.client.connection import stop_embedded
    from nsml.config import SERVER_FILE

    home = tmp_path / "home"
    home.mkdir()
    other = tmp_path / "other"  # what the pid now runs: `python -m nsml.server --home OTHER`, roughly
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "-m", "nsml.server", "--home", str(other)]
    )
    try:
        cmdline = Path(f"/proc/{bystander.pid}/cmdline")
        _wait_for(lambda: b"nsml.server" in cmdline.read_bytes(), "the bystander to start", timeout=30)
        server_file = {"pid": bystander.pid, "url": "http://127.0.0.1:9", "token": "x"}
        (home / SERVER_FILE).write_text(json.dumps(server_file))
        assert stop_embedded(home) is False
        assert bystander.poll() is None  # not signalled
        assert not (home / SERVER_FILE).exists()  # the stale file is gone
    finally:
        bystander.kill()
        bystander.wait()


# 7. usage errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("run", "--foo"), ("--foo", "nsml run --help")),
        (("submit",), ("SESSION", "nsml submit --help")),
        (("nosuch",), ("nosuch", "nsml --help")),
        (("dataset", "set", "x", "--daily-limit", "many"), ("many", "nsml dataset set --help")),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(
    platform: Platform, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    line = _one_line_error(platform.nsml(*args, check=False))
    assert line.startswith("Error: ")
    for word in words:
        assert word in line


# 8. progress when not on a terminal ---------------------------------------------------------
def test_training_prints_progress_lines_into_a_pipe() -> None:
    script = """
import torch
from torch import nn
from kortext import training

class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)
    def forward(self, x):
        import time; time.sleep(0.02)
        return self.layer(x).squeeze(-1)

x = torch.randn(200, 2)
y = (x[:, 0] > 0).float()
training.fit(Slow(), [x], y, training.TrainConfig(epochs=2, batch_size=10, progress_interval_s=0.1))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()  # progress goes to stderr: stdout may carry --json
    assert any(line.startswith("epoch 0: ") and "valid_score" in line for line in lines), lines
    assert any(line.startswith("epoch 1: ") for line in lines), lines
    steps = [line for line in lines if line.startswith("epoch 0 ") and "/18 batches" in line]
    assert steps, lines
    assert "\r" not in result.stdout + result.stderr


def test_missions_ask_for_progress_off_a_terminal() -> None:
    for mission in ("kin", "movie_review"):
        text = (ROOT / "missions" / mission / "main.py").read_text()
        assert "isatty" not in text
