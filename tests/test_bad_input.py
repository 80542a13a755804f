"""Bad input gets one clear line, a non-zero exit, and loses nothing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from conftest import TRAIN_2018, Platform


def _one_line_error(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for word in words:
        assert word in lines[0], lines[0]


def test_unknown_dataset(platform: Platform) -> None:
    folder = platform.project("unknown_ds", TRAIN_2018)
    _one_line_error(
        platform.nsml("run", "-d", "no_such_data", cwd=folder, check=False),
        "no_such_data",
        "not found",
        "nsml dataset ls",
    )


def test_missing_entry_file(platform: Platform) -> None:
    folder = platform.project("no_entry", TRAIN_2018)
    _one_line_error(
        platform.nsml("run", "-d", "demo_kin", "-e", "train.py", cwd=folder, check=False),
        "train.py",
        "not found",
    )
    assert platform.json("ps", "-a") == [] or all(s["entry"] != "train.py" for s in platform.json("ps", "-a"))


def test_invalid_session_names(platform: Platform) -> None:
    _one_line_error(platform.nsml("logs", "../../etc/passwd", check=False), "invalid")
    _one_line_error(platform.nsml("logs", "a/b/c", check=False), "invalid session name")


def test_logs_of_a_session_that_does_not_exist(platform: Platform) -> None:
    _one_line_error(platform.nsml("logs", "demo_kin/999", check=False), "not found")
    _one_line_error(platform.nsml("model", "ls", "nobody/demo_kin/1", check=False), "not found")


def test_rm_of_a_pattern_matching_nothing(platform: Platform) -> None:
    _one_line_error(platform.nsml("rm", "demo_kin/12345*", "-y", check=False), "no session matches")


def test_syntax_error_fails_the_session_with_traceback_in_logs(platform: Platform) -> None:
    folder = platform.project("syntax", "import nsml\nprint('hello'\n")
    name = platform.run(folder)
    session = platform.wait(name)
    assert session["status"] == "failed" and session["exit_code"] == 1
    log = platform.nsml("logs", name).stdout
    assert "SyntaxError" in log
    assert "Failed (1)" in platform.nsml("ps", "-a").stdout


def test_exception_fails_the_session_with_traceback_in_logs(platform: Platform) -> None:
    script = """
        import nsml
        print("before the crash", flush=True)
        raise ValueError("the model diverged")
    """
    name = platform.run(platform.project("crash", script))
    assert platform.wait(name)["status"] == "failed"
    log = platform.nsml("logs", name).stdout
    assert "before the crash" in log
    assert "Traceback (most recent call last)" in log
    assert "ValueError: the model diverged" in log


def test_non_json_report_value_fails_clearly(platform: Platform) -> None:
    script = """
        import nsml
        nsml.report(step=0, good=1.5)
        nsml.report(step=1, bad=object())
    """
    name = platform.run(platform.project("badreport", script))
    assert platform.wait(name)["status"] == "failed"
    log = platform.nsml("logs", name).stdout
    assert "TypeError: nsml.report: bad=" in log and "not JSON-serialisable" in log


def test_failed_save_lists_no_checkpoint(platform: Platform) -> None:
    script = """
        import os, nsml
        def save(dir_name, **kwargs):
            with open(os.path.join(dir_name, "part1"), "w") as handle:
                handle.write("half a checkpoint")
            raise OSError("disk full")
        nsml.bind(save=save)
        try:
            nsml.save("broken")
        except OSError:
            print("save failed as expected", flush=True)
        nsml.bind(save=lambda d, **k: open(os.path.join(d, "ok"), "w").write("ok"))
        nsml.save("good")
    """
    name = platform.run(platform.project("badsave", script))
    assert platform.wait(name)["status"] == "exited"
    assert [c["name"] for c in platform.json("model", "ls", name)] == ["good"]


def test_killed_server_marks_running_sessions_failed_and_keeps_the_rest(platform: Platform) -> None:
    folder = platform.project("survivor", TRAIN_2018)
    done = platform.run(folder, args="--epochs 2")
    platform.wait(done)
    tag = f"survivor-{time.time_ns()}"
    running = platform.run(folder, args=f"--epochs 1000 --sleep 0.2 --tag {tag}")
    platform.wait(running, ("running",))
    deadline = time.monotonic() + 30
    while not platform.json("model", "ls", running) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert _processes_with(tag), "the training process runs before the kill"
    pid = platform.server_info()["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            time.sleep(0.05)
        except ProcessLookupError:
            break

    # the training process died with the server: no orphan keeps burning the machine
    deadline = time.monotonic() + 10
    while _processes_with(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(tag) == []

    # the next command started a new server, which recovered
    session = platform.session(running)
    assert session["status"] == "failed"
    assert "server stopped while the session was running" in session["reason"]
    assert platform.json("model", "ls", running) != []  # checkpoints kept
    kept = platform.session(done)
    assert kept["status"] == "exited" and len(platform.json("model", "ls", done)) == 2
    assert "server stopped" in platform.nsml("logs", running).stdout
    assert platform.server_info()["pid"] != pid


def _processes_with(tag: str) -> list[int]:
    """Live processes of this host whose command line mentions ``tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() in (entry / "cmdline").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
