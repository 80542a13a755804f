"""``nsml exec``: reading and changing a running training loop's variables, through the
session's own API channel; refused to other accounts, and to sessions that shared no scope,
ended, or wait in the queue.

A real embedded server (two session slots), the real CLI, and sessions in the sandbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import Platform, running_platform, second_user
from nsml.sdk.live import MAX_OUTPUT_CHARS, evaluate
from nsml.server.errors import ConflictError, TooManyRequests
from nsml.server.services import live_exec
from nsml.store import Session, SessionStatus

PASSWORD = "exec test password"
DEADLINE_S = 60.0

# A 2018-style loop at module level: it reads `lr` at every step and reports it. The test
# ends it by setting `lr` to -1 through nsml exec.
LOOP = """
    import time
    import nsml

    lr = 0.1
    config = {"momentum": 0.9}
    for step in range(100_000):
        nsml.report(summary=True, scope=locals(), step=step, lr=lr, momentum=config["momentum"])
        if lr < 0:
            break
        time.sleep(0.1)
    print("loop ended at lr", lr, flush=True)
"""

# Reports without a scope; runs until stopped.
NO_SCOPE = """
    import time
    import nsml

    print("running", flush=True)
    for step in range(100_000):
        nsml.report(step=step, loss=1.0)
        time.sleep(0.2)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_platform(tmp_path_factory, "exec", NSML_MAX_CONCURRENT="2") as owner:
        other = second_user(owner, "mallory", owner.home.parent, PASSWORD)
        yield {"owner": owner, "other": other}


def _until(what: str, probe: Any, timeout: float = DEADLINE_S) -> Any:
    """Call ``probe`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {timeout:g} s; last: {last!r}")


def _exec(platform: Platform, name: str, code: str, check: bool = True) -> Any:
    return platform.nsml("exec", name, "-c", code, check=check)


def _shared(platform: Platform, name: str) -> Any:
    """The first answer of ``name`` once its loop has shared its scope."""

    def probe() -> Any:
        result = _exec(platform, name, "lr", check=False)
        if result.returncode == 0:
            return result
        assert "has not shared a scope" in result.stderr, result.stderr
        return None

    return _until(f"{name} sharing its scope", probe)


def _summary_lr(platform: Platform, name: str) -> Any:
    summary = platform.session(name).get("summary") or {}
    return summary.get("lr")


def test_exec_reads_and_changes_a_running_loop(world: dict[str, Any]) -> None:
    owner: Platform = world["owner"]
    other: Platform = world["other"]
    name = owner.run(owner.project("loop", LOOP))
    quiet = owner.run(owner.project("quiet", NO_SCOPE))

    assert _shared(owner, name).stdout.strip() == "0.1"
    # the code runs in the session's own process (its environment), not in the server
    inside = _exec(owner, name, "__import__('os').environ['NSML_SESSION']").stdout.strip()
    assert inside == repr(name)

    changed = _exec(owner, name, "lr = 0.5")
    assert changed.stdout == "" and changed.returncode == 0
    _until("a report with the new lr", lambda: _summary_lr(owner, name) == 0.5)
    assert _exec(owner, name, "lr").stdout.strip() == "0.5"

    # a mutable object, and what the code prints, which comes back with the answer
    printed = _exec(owner, name, "config['momentum'] = 0.5; print('set', config)")
    assert printed.stdout.strip() == "set {'momentum': 0.5}"
    _until("a report with the new momentum", lambda: owner.session(name)["summary"]["momentum"] == 0.5)

    # an exception is one line on stderr, exit code 1; --json says the same
    failed = _exec(owner, name, "print('before'); undefined_name + 1", check=False)
    assert failed.returncode == 1 and failed.stdout == "before\n"
    assert failed.stderr.strip().splitlines() == ["Error: NameError: name 'undefined_name' is not defined"]
    as_json = owner.nsml("exec", name, "-c", "1 / 0", "--json", check=False)
    assert as_json.returncode == 1 and '"ok": false' in as_json.stdout
    assert "ZeroDivisionError" in as_json.stdout
    assert "exit()" not in owner.nsml("exec", name, "-c", "exit()", check=False).stdout
    assert _exec(owner, name, "lr").stdout.strip() == "0.5"  # exit() did not end the session's listener

    # the interactive form, fed through stdin: statements, a block, expressions, exit()
    session_text = "x = 6\nfor i in range(3):\n    x += i\n\nx * 7\nexit()\nlr = 99\n"
    repl = owner.nsml("exec", name, input=session_text)
    assert repl.stdout.strip() == "63" and ">>>" not in repl.stdout
    assert _exec(owner, name, "lr").stdout.strip() == "0.5"  # nothing after exit() was sent

    # another account: the session does not exist for them
    for code in ("lr", "lr = 7"):
        refused = other.nsml("exec", name, "-c", code, check=False)
        assert refused.returncode == 1 and "not found" in refused.stderr, refused.stderr
    assert _exec(owner, name, "lr").stdout.strip() == "0.5"

    # a session's own token: no exec, and no commands of another session
    token = _exec(owner, name, "__import__('os').environ['NSML_SESSION_TOKEN']").stdout.strip().strip("'")
    api = owner.server_info()["url"] + "/api/v1/sessions/"
    headers = {"Authorization": f"Bearer {token}"}
    itself = httpx.post(api + name + "/exec", json={"code": "lr"}, headers=headers, timeout=30)
    assert itself.status_code == 403, itself.text
    stolen = httpx.get(api + quiet + "/exec/next", params={"wait": 0}, headers=headers, timeout=30)
    assert stolen.status_code == 401, stolen.text

    # a session that never shared a scope
    owner.wait(quiet, ("running",))
    _until("the quiet session's first line", lambda: "running" in owner.nsml("logs", quiet).stdout)
    no_scope = _exec(owner, quiet, "1", check=False)
    assert no_scope.returncode == 1
    assert no_scope.stderr.strip().splitlines() == [
        "Error: this session has not shared a scope: call nsml.report(scope=locals()) in its "
        "loop (or nsml.paused(scope=locals())), then run it again"
    ]

    # a queued session: both slots are taken
    waiting = owner.run(owner.project("waiting", NO_SCOPE))
    assert owner.session(waiting)["status"] == "queued"
    queued = _exec(owner, waiting, "1", check=False)
    assert queued.returncode == 1 and f"session {waiting} is queued" in queued.stderr, queued.stderr

    # ending the loop through exec; then the session has ended
    _exec(owner, name, "lr = -1")
    assert owner.wait(name)["status"] == "exited"
    assert "loop ended at lr -1" in owner.nsml("logs", name).stdout
    ended = _exec(owner, name, "lr", check=False)
    assert ended.returncode == 1
    assert ended.stderr.strip() == (
        f"Error: session {name} has ended (exited); nsml exec needs a running session"
    )

    for session in (quiet, waiting):
        owner.nsml("stop", session)


def test_bad_input_is_one_line(world: dict[str, Any]) -> None:
    owner: Platform = world["owner"]
    for args, message in (
        (("exec", "not a session", "-c", "1"), "session"),
        (("exec", "demo_kin/999999", "-c", "1"), "not found"),
        (("exec", "demo_kin/1", "-c", "x" * 20_000), "code"),
        (("exec", "demo_kin/1", "--json"), "--json needs -c"),
    ):
        result = owner.nsml(*args, check=False)
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


# the session's side, in this process -------------------------------------------------


def test_evaluate_in_function_locals_and_module_globals() -> None:
    module = {"__builtins__": __builtins__, "lr": 0.1, "helper": lambda: "from module"}
    assert evaluate("lr", module, module) == (True, "0.1")
    assert evaluate("lr = 0.5", module, module) == (True, "")
    assert module["lr"] == 0.5  # at module level an assignment rebinds the script's name

    config = {"lr": 0.1}
    local = {"config": config, "epoch": 3}  # what locals() gives inside a function
    assert evaluate("epoch, helper()", local, module) == (True, "(3, 'from module')")
    assert evaluate("config['lr'] = 0.01", local, module) == (True, "")
    assert config["lr"] == 0.01  # a mutable object changes for the function too

    assert evaluate("None", local, module) == (True, "")
    assert evaluate("raise SystemExit(3)", local, module) == (False, "SystemExit: 3")
    assert evaluate("def f(:", local, module)[0] is False
    ok, output = evaluate("'x' * 200_000", local, module)
    assert ok and len(output) <= MAX_OUTPUT_CHARS and output.endswith("characters in all]")
    ok, output = evaluate("for i in range(100_000): print(i)", local, module)
    assert ok and len(output) <= MAX_OUTPUT_CHARS
    assert evaluate("print('a\\x00b\\ud800'); 'c\\x00'", local, module) == (True, "a\\x00b\\ud800\n'c\\x00'")


def _session(number: int, status: SessionStatus = SessionStatus.RUNNING) -> Session:
    from datetime import datetime, timezone

    return Session(
        id=number, owner="u", dataset="d", number=number, entry="main.py", args=[], description="",
        status=status, exit_code=None, reason=None, gpus=0, created_at=datetime.now(timezone.utc),
        started_at=None, ended_at=None, summary=None,
    )  # fmt: skip


def test_broker_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued commands per session, and the owner's wait, are bounded; a session's end
    fails the wait at once."""
    monkeypatch.setattr(live_exec, "ANSWER_WAIT_S", 0.3)
    monkeypatch.setattr(live_exec, "STATUS_CHECK_S", 0.05)

    async def scenario() -> None:
        broker = live_exec.ExecBroker()
        session = _session(1)
        with pytest.raises(ConflictError):
            broker.submit(session, "1")
        assert await broker.next_command(session.id, 0) is None  # the session starts polling
        commands = [broker.submit(session, str(i)) for i in range(live_exec.MAX_PENDING)]
        with pytest.raises(TooManyRequests):
            broker.submit(session, "too many")

        async def running() -> bool:
            return True

        with pytest.raises(live_exec.NoAnswer):
            await broker.answer(session, commands[0], running)
        first = await broker.next_command(session.id, 1)
        assert first is not None and first.code == "1"  # the one given up on left the queue
        waiting = asyncio.ensure_future(broker.answer(session, first, running))
        await asyncio.sleep(0)
        assert broker.resolve(session.id, first.id, True, "answer")
        assert await waiting == (True, "answer")
        assert not broker.resolve(session.id, first.id, True, "again")

        async def ended() -> bool:
            return False

        with pytest.raises(ConflictError):
            await broker.answer(session, commands[2], ended)
        assert live_exec.session_refusal(_session(2, SessionStatus.QUEUED)) is not None
        assert live_exec.session_refusal(_session(3, SessionStatus.STOPPED)) is not None

    asyncio.run(scenario())
