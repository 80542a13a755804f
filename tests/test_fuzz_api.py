"""Property-based tests of every route in the OpenAPI schema (Schemathesis): no input makes a 5xx.

A real server on 127.0.0.1 gets requests generated from its own ``/openapi.json``: valid
ones and invalid ones (Schemathesis' positive and negative modes), as four callers:

* anonymous, on every route;
* a participant, on every route, with generated path parameters, then again with the
  path parameters of things that exist (the demo dataset, the participant's running
  session), so that bodies are checked past the 404 of a random name;
* that session's own token, on the routes only a session may call (reports, checkpoints);
* the admin, on the admin routes.

Left out, and why: the participant does not call ``POST /auth/logout`` (it would revoke the
token the rest of the run uses; anonymous callers still do), nor stop, resume, fork or
remove its own session with real path parameters (the session's token must stay alive);
the admin does not disable accounts by generated names (it could hit the participant).
There is no shutdown route to leave out. The web pages are not in the schema.

Bounded in time: a few examples per route and caller (NSML_FUZZ_EXAMPLES, default 6: about
750 requests in 50-80 s on two busy cores), derandomized, no shrinking. Every 5xx is
collected (the first per route and caller, as a curl command) with the server's log, which
holds the traceback, and reported at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ForegroundServer, targz
from postgres import binaries, postgres_server

schemathesis = pytest.importorskip("schemathesis")  # the test extra; it brings what follows
hypothesis = pytest.importorskip("hypothesis")
requests = pytest.importorskip("requests")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

ADMIN_TOKEN = "fuzz-admin-token"
PASSWORD = "fuzzing password 1"
EXAMPLES = int(os.environ.get("NSML_FUZZ_EXAMPLES", "6"))  # per route, caller and mode
WAIT_FOR_TOKEN = """
import os, time
print("token", os.environ["NSML_SESSION_TOKEN"], flush=True)
time.sleep(900)
"""
# what the participant does not do to its own session: end it, or start more sessions
KEEPS_SESSION = {"stop", "resume", "fork"}


@dataclass
class Target:
    url: str
    log: Path
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    real_paths: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A server on SQLite; on PostgreSQL too (stricter: 4-byte INTEGERs, no NUL in text)
    with NSML_FUZZ_POSTGRES=1, since that doubles the time."""
    with ExitStack() as stack:
        database = {}
        if request.param == "postgresql":
            if os.environ.get("NSML_FUZZ_POSTGRES") != "1":
                pytest.skip("set NSML_FUZZ_POSTGRES=1 to fuzz a server on PostgreSQL as well")
            if binaries() is None:
                pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
            database = {"NSML_DB": stack.enter_context(postgres_server())}  # its own, fresh
        yield from _serve(tmp_path_factory, database)


def _serve(tmp_path_factory: pytest.TempPathFactory, database: dict[str, str]) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("fuzz")
    server = ForegroundServer(base / "home", ADMIN_TOKEN, env=database, log=base / "server.log")
    url, log = server.url, server.log
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    session = ""
    user: dict[str, str] = {}
    try:
        api = url + "/api/v1"
        added = httpx.post(api + "/admin/users", headers=admin, json={"name": "fuzzer", "password": PASSWORD})
        assert added.status_code == 201, added.text
        login = httpx.post(api + "/auth/login", json={"name": "fuzzer", "password": PASSWORD}, timeout=60)
        user = {"Authorization": f"Bearer {login.json()['token']}"}
        upload = httpx.post(
            api + "/uploads", headers=user, content=targz({"main.py": WAIT_FOR_TOKEN.encode()})
        )
        created = httpx.post(
            api + "/sessions",
            headers=user,
            json={"dataset": "demo_kin", "code_upload": upload.json()["upload_id"]},
        )
        assert created.status_code == 201, created.text
        session = created.json()["name"]
        token = ""
        deadline = time.monotonic() + 60
        while not token:
            text = httpx.get(api + f"/sessions/{session}/logs", headers=user).text
            token = text.split()[1] if text.startswith("token ") else ""
            assert token or time.monotonic() < deadline, f"the session printed no token: {text}"
            time.sleep(0.1)
        owner, dataset, number = session.split("/")
        yield Target(
            url,
            log,
            headers={
                "anonymous": {},
                "participant": user,
                "session": {"Authorization": f"Bearer {token}"},
                "admin": admin,
            },
            real_paths={"owner": owner, "dataset": dataset, "number": number, "name": "demo_kin"},
        )
    finally:
        if session:
            httpx.post(url + f"/api/v1/sessions/{session}/stop", headers=user, timeout=30)
        server.stop()


Run = tuple[str, "dict[str, str] | None", "dict[str, Any] | None"]


def _plan(method: str, path: str, real_paths: dict[str, str]) -> list[Run]:
    """(caller, fixed path parameters, fixed query) to run an operation as; anonymous
    callers are refused before any validation, so they get a few valid requests only."""
    runs: list[Run] = [("anonymous", None, None)]
    if path.startswith("/api/v1/admin/"):
        if not path.endswith("/disable"):
            runs.append(("admin", None, None))
        return runs + [("participant", None, None)]
    if (method, path) != ("POST", "/api/v1/auth/logout"):
        runs.append(("participant", None, None))
    wanted = {name for name in real_paths if "{" + name + "}" in path}
    if "{number}" in path and "/checkpoints/{name}" in path:
        wanted.discard("name")  # a checkpoint's name, generated
    last = path.rstrip("/").rsplit("/", 1)[-1]
    ends_session = method == "DELETE" and path.endswith("{number}") or last in KEEPS_SESSION
    if wanted and not ends_session:
        fixed = {name: real_paths[name] for name in wanted}
        query = {"follow": False} if last == "logs" else None  # following a running session never ends
        runs.append(("participant", fixed, query))
        if last in ("reports", "dataset") or "/checkpoints/{name}" in path and method == "PUT":
            runs.append(("session", fixed, None))
    return runs


def _negatable(operation: Any, fixed: dict[str, str] | None) -> bool:
    """Whether an invalid request can be generated: a body, or a parameter with a type or
    bounds; only free-form strings in the path leave Schemathesis nothing to break."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    for parameter in raw.get("parameters", []):
        if parameter["in"] == "path" and fixed and parameter["name"] in fixed:
            continue
        schema = parameter.get("schema", {})
        if parameter["in"] != "path" or schema.get("type") != "string" or len(schema) > 2:
            return True
    return False


def _fuzz(target: Target, operation: Any, run_as: Run, mode: Any, http: Any) -> tuple[int, str | None]:
    """Send generated requests for one operation, caller and mode: (how many, first 5xx)."""
    calls = 0
    failure: list[str] = []
    caller, fixed, query = run_as
    headers = target.headers[caller]

    @settings(
        max_examples=EXAMPLES if caller != "anonymous" else 2,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed, query=query))
    def run(case: Any) -> None:
        nonlocal calls
        calls += 1
        try:
            response = case.call(base_url=target.url, session=http, headers=headers, timeout=30)
            answer = f"{response.status_code} {response.text[:300]}" if response.status_code >= 500 else ""
        except requests.RequestException as exc:
            answer = f"no answer: {type(exc).__name__}"
        if answer and not failure:
            failure.append(f"{answer}\n    {case.as_curl_command(headers=headers)[:1500]}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # negative mode, with nothing left to make invalid
        pass
    return calls, failure[0] if failure else None


def test_no_generated_request_makes_a_5xx(target: Target) -> None:
    schema = schemathesis.openapi.from_url(target.url + "/openapi.json")
    failures: dict[str, str] = {}
    started = time.monotonic()
    calls = 0
    http = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 45, [op.label for op in operations]
    for operation in operations:
        for run_as in _plan(operation.method.upper(), operation.path, target.real_paths):
            caller, fixed, _ = run_as
            modes = [GenerationMode.POSITIVE]
            if caller != "anonymous" and _negatable(operation, fixed):
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                sent, failure = _fuzz(target, operation, run_as, mode, http)
                calls += sent
                key = (
                    f"{operation.label} as {caller}"
                    + (" on real paths" if fixed else "")
                    + f" ({mode.value})"
                )
                if failure:
                    failures[key] = failure
    elapsed = time.monotonic() - started
    print(f"{calls} generated requests on {len(operations)} operations in {elapsed:.0f} s")
    log = target.log.read_text(errors="replace")
    assert not failures, (
        "\n".join(f"{k}: {v}" for k, v in failures.items()) + "\n--- server log:\n" + log[-20000:]
    )
    assert "unexpected" not in log, log[-20000:]
