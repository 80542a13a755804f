"""Bad input gets one clear line, a non-zero exit, and loses nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import httpx
import pytest

from conftest import TRAIN_2018, Platform, processes_with
from nsml.names import InvalidName, parse_session, validate_name
from nsml.server.guard import RequestGuard


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


EXPOSE_TOKEN = """
    import os, time
    print("token", os.environ["NSML_SESSION_TOKEN"], flush=True)
    for _ in range(600):
        if os.path.exists("release"):
            break
        time.sleep(0.1)
"""


def _api(platform: Platform) -> tuple[str, dict[str, str]]:
    """The server's API address and the local user's headers (starting the server)."""
    platform.nsml("dataset", "ls")
    info = platform.server_info()
    return info["url"] + "/api/v1", {"Authorization": f"Bearer {info['token']}"}


def _refused(response: httpx.Response, status: int = 422, *words: str) -> None:
    """A clear refusal: the status, and one JSON line without a traceback."""
    assert response.status_code == status, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail, detail
    for word in words:
        assert word in detail, detail


def test_numbers_that_fit_nowhere_are_refused_not_crashed(platform: Platform) -> None:
    """Each of these made a 500 with a traceback: a step of 2**70 or a metric of 10**400
    in a report, a session number of 10**23, a log offset of 2**62."""
    api, headers = _api(platform)
    name = platform.run(platform.project("huge_numbers", EXPOSE_TOKEN))
    try:
        token = ""
        deadline = time.monotonic() + 60
        while not token and time.monotonic() < deadline:
            log = platform.nsml("logs", name).stdout
            token = log.split()[1] if log.startswith("token ") else ""
            time.sleep(0.1)
        own = {"Authorization": f"Bearer {token}"}
        reports = api + f"/sessions/{name}/reports"

        def report(step: object = 0, time: object = 0, **metrics: object) -> httpx.Response:
            return httpx.post(
                reports, headers=own, json={"reports": [{"step": step, "metrics": metrics, "time": time}]}
            )

        _refused(report(step=2**70), 422, "step")
        _refused(report(step=2**31), 422, "step")  # an INTEGER column, 4 bytes in PostgreSQL
        _refused(report(loss=10**400), 422, "64 bits")
        _refused(report(time="0001-01-01T00:00:00+05:00"), 422, "time")
        _refused(report(time=10**30), 422, "time")
        _refused(report(nested=[1, 2]), 422, "metric")
        nan = b'{"reports": [{"step": 1, "metrics": {"loss": NaN}, "time": 0}]}'
        _refused(
            httpx.post(reports, headers={**own, "Content-Type": "application/json"}, content=nan),
            422,
            "finite",
        )
        assert report(step=2**31 - 1, loss=0.5, count=2**63 - 1, note="ok").status_code == 204
        assert {
            (m["key"], m["step"])
            for m in httpx.get(api + f"/sessions/{name}/metrics", headers=headers).json()
        } >= {("loss", 2**31 - 1)}

        owner, dataset, _ = name.split("/")
        _refused(httpx.get(api + f"/sessions/{owner}/{dataset}/{10**23}", headers=headers), 422, "number")
        _refused(httpx.get(api + f"/sessions/{owner}/{dataset}/-1", headers=headers), 422, "number")
        _refused(
            httpx.get(api + f"/sessions/{owner}/{dataset}/{2**31 - 1}", headers=headers), 404, "not found"
        )
        logs = httpx.get(api + f"/sessions/{name}/logs", params={"offset": 2**62}, headers=headers)
        assert logs.status_code == 200 and logs.content == b"" and logs.headers["x-log-offset"] == str(2**62)
        _refused(
            httpx.get(api + f"/sessions/{name}/logs", params={"offset": 2**64}, headers=headers),
            422,
            "offset",
        )
        _refused(httpx.get(api + f"/submissions/{10**23}", headers=headers), 422, "submission_id")
        _refused(httpx.get(api + f"/submissions/{10**23}/logs", headers=headers), 422, "submission_id")
        _refused(httpx.get(api + "/sessions", params={"limit": 10**23}, headers=headers), 422, "limit")
        _refused(
            httpx.post(api + "/admin/invites", json={"expires_hours": 1e300}, headers=headers),
            422,
            "expires_hours",
        )
        _refused(
            httpx.post(api + "/admin/credits/nobody", json={"amount": 1e308}, headers=headers), 422, "amount"
        )
        infinite = b'{"amount": Infinity}'
        _refused(
            httpx.post(
                api + "/admin/credits/nobody",
                content=infinite,
                headers={**headers, "Content-Type": "application/json"},
            ),
            422,
            "amount",
        )
        _refused(
            httpx.patch(api + "/datasets/demo_kin", json={"daily_limit": 2**63}, headers=headers),
            422,
            "daily_limit",
        )
        _refused(
            httpx.post(
                api + "/sessions",
                json={"dataset": "demo_kin", "code_upload": "a", "gpus": 2**64},
                headers=headers,
            ),
            422,
            "gpus",
        )
    finally:
        (platform.workdir / "huge_numbers" / "release").touch()
        platform.nsml("stop", name, check=False)


def test_only_ascii_digits_number_a_session(platform: Platform) -> None:
    """``mallory/cup/\u0661`` (an Arabic-Indic one) named session 1: Python's int() takes it."""
    api, headers = _api(platform)
    user = platform.json("whoami")["name"]
    for number in ("\u0661", "\uff11", "\u00b9", "+1", "1_0"):
        body = {"session": f"{user}/demo_kin/{number}", "checkpoint": "1"}
        _refused(httpx.post(api + "/submissions", json=body, headers=headers), 400, "invalid session name")
    for number in ("\u0661", "\uff11", "\u00b9", "+1", "1_0", "1%0A", "%201", "1.0"):
        _refused(httpx.get(api + f"/sessions/{user}/demo_kin/{number}", headers=headers), 422, "number")
    _refused(
        httpx.post(
            api + "/submissions", json={"session": "demo_kin/99999999999", "checkpoint": "1"}, headers=headers
        ),
        400,
        "invalid session name",
    )
    _one_line_error(platform.nsml("logs", "demo_kin/\u0661", check=False), "invalid session name")
    for number in ("\u0661", "1\u0661", "99999999999"):
        with pytest.raises(InvalidName):
            parse_session(f"{user}/demo_kin/{number}")
    for name in ("demo\n", "demo\u0661", "\u0661"):  # a trailing newline passed `$`
        with pytest.raises(InvalidName):
            validate_name("dataset", name)
    assert parse_session("a/b/0012").number == 12


def test_web_pages_refuse_bad_input_too(platform: Platform) -> None:
    """The web UI is not in the API schema the fuzz test reads; its inputs go through the
    same checks."""
    api, headers = _api(platform)
    web = api.removesuffix("/api/v1")
    cookies = {"nsml_token": headers["Authorization"].split()[1]}
    user = platform.json("whoami")["name"]
    for number in (str(10**23), "\u0661", "-1"):
        page = httpx.get(f"{web}/sessions/{user}/demo_kin/{number}", cookies=cookies)
        _refused(page, 422, "number")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for name in ("a%00b", "x" * 5000, "%ED%A0%80", "%FF"):  # NUL, long, a surrogate, not UTF-8
        login = httpx.post(web + "/login", content=f"name={name}&password=a+password", headers=form)
        assert login.status_code in (303, 422), (login.status_code, login.text)


def test_bad_upload_ids_and_text_are_refused(platform: Platform) -> None:
    api, headers = _api(platform)
    for upload in ("../../etc/passwd", "x" * 5000, "\u0661" * 32, "0" * 31):
        created = httpx.post(
            api + "/sessions", json={"dataset": "demo_kin", "code_upload": upload}, headers=headers
        )
        _refused(created, 400, "invalid upload id")
        dataset = httpx.post(api + "/datasets", json={"name": "fresh", "upload_id": upload}, headers=headers)
        _refused(dataset, 400, "invalid upload id")
    missing = httpx.post(api + "/datasets", json={"name": "fresh", "upload_id": "0" * 32}, headers=headers)
    _refused(missing, 400, "not found")
    _refused(httpx.get(api + "/cache/" + "a" * 64 + "%0A", headers=headers), 400, "invalid cache key")
    _refused(httpx.get(api + "/datasets/a%00b", headers=headers), 400, "NUL")
    _refused(httpx.get(api + "/datasets", params={"pattern": "a\x00"}, headers=headers), 400, "NUL")
    nul = httpx.post(api + "/sessions", json={"dataset": "demo\x00", "code_upload": "a"}, headers=headers)
    _refused(nul, 422, "NUL")
    surrogate = b'{"dataset": "demo_kin", "code_upload": "a", "description": "\\ud800"}'
    _refused(
        httpx.post(
            api + "/sessions", content=surrogate, headers={**headers, "Content-Type": "application/json"}
        ),
        422,
        "surrogate",
    )
    _refused(
        httpx.post(
            api + "/sessions", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
        ),
        422,
    )


def test_an_unexpected_error_is_one_line_and_logged_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The guard behind every route: a bug answers a one-line 500, its traceback goes to
    the log without the exception's message (it may quote the request)."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        raise RuntimeError(f"cannot use {body.decode()}")  # a message that quotes the request

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=RequestGuard(broken))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/api/v1/anything", content=b"the body")

    with caplog.at_level(logging.ERROR, logger="nsml.server"):
        response = asyncio.run(call())
    _refused(response, 500, "internal server error")
    assert "hunter2" not in response.text
    assert "RuntimeError" in caplog.text and "/api/v1/anything" in caplog.text and "broken" in caplog.text
    assert "hunter2" not in caplog.text


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

    assert processes_with(tag), "the training process runs before the kill"
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
    while processes_with(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(tag) == []

    # the next command started a new server, which recovered
    session = platform.session(running)
    assert session["status"] == "failed"
    assert "server stopped while the session was running" in session["reason"]
    assert platform.json("model", "ls", running) != []  # checkpoints kept
    kept = platform.session(done)
    assert kept["status"] == "exited" and len(platform.json("model", "ls", done)) == 2
    assert "server stopped" in platform.nsml("logs", running).stdout
    assert platform.server_info()["pid"] != pid


def test_continuing_from_names_too_long_to_keep_is_refused() -> None:
    """Fork and resume keep ``OWNER/DATASET/N:CHECKPOINT`` in a VARCHAR(128), which
    PostgreSQL enforces: longer names (up to 269 characters) are refused with one line."""
    from types import SimpleNamespace

    from nsml.server.errors import BadRequest
    from nsml.server.services.session_checkpoints import continuation

    short = SimpleNamespace(name="alice/demo_kin/1")
    assert continuation(short, "best") == "alice/demo_kin/1:best"  # type: ignore[arg-type]
    long = SimpleNamespace(name=f"{'o' * 64}/{'d' * 64}/2147483647")
    with pytest.raises(BadRequest, match="over 128 characters"):
        continuation(long, "c" * 128)  # type: ignore[arg-type]
