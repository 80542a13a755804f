"""Authorisation of the HTTP API: a session's token acts on that session only."""

from __future__ import annotations

import httpx

from conftest import Platform, targz

EXPOSE_TOKEN = """
    import os, time, nsml
    print("token", os.environ["NSML_SESSION_TOKEN"], flush=True)
    for _ in range(600):
        if os.path.exists("release"):
            break
        time.sleep(0.1)
"""


def _token_of(platform: Platform, name: str) -> str:
    for _ in range(100):
        log = platform.nsml("logs", name).stdout
        if log.startswith("token "):
            return log.split()[1]
        platform.wait(name, ("running",))
    raise AssertionError(f"{name} printed no token")


def test_session_tokens_are_scoped(platform: Platform) -> None:
    folder = platform.project("scoped", EXPOSE_TOKEN)
    first, second = platform.run(folder), platform.run(folder)
    token_first = _token_of(platform, first)
    _token_of(platform, second)
    info = platform.server_info()
    api = info["url"] + "/api/v1/sessions/"
    as_first = {"Authorization": f"Bearer {token_first}"}
    as_user = {"Authorization": f"Bearer {info['token']}"}
    report = {"reports": [{"step": 0, "metrics": {"loss": 1.0}, "time": 0}]}
    try:
        assert httpx.post(api + first + "/reports", json=report, headers=as_first).status_code == 204
        # another session's runtime routes, its logs, its stop: refused
        assert httpx.post(api + second + "/reports", json=report, headers=as_first).status_code == 401
        assert httpx.get(api + second + "/logs", headers=as_first).status_code == 404
        assert httpx.post(api + second + "/stop", headers=as_first).status_code == 404
        # a session's token cannot act as a person: no new sessions, submissions or sign-in links
        for path in ("/api/v1/auth/web-link", "/api/v1/sessions", "/api/v1/submissions", "/api/v1/uploads"):
            denied = httpx.post(info["url"] + path, headers=as_first, json={})
            assert denied.status_code == 403, (path, denied.text)
        # nor list the owner's sessions, remove one (itself included) or free the owner's cache
        assert httpx.get(api.rstrip("/"), headers=as_first).status_code == 403
        assert httpx.delete(api + first, headers=as_first).status_code == 403
        assert httpx.delete(info["url"] + "/api/v1/cache/" + "0" * 64, headers=as_first).status_code == 403
        assert platform.session(first)["status"] == "running"
        # the user's own token manages sessions but does not write into them
        refused = httpx.post(api + first + "/reports", json=report, headers=as_user)
        assert refused.status_code == 401 and "only the process" in refused.json()["detail"]

        bad = httpx.put(api + first + "/checkpoints/broken", content=b"not a tar", headers=as_first)
        assert bad.status_code == 400 and "could not be unpacked" in bad.json()["detail"]
        escape = targz({"../../outside.txt": b"x"})
        assert (
            httpx.put(api + first + "/checkpoints/escape", content=escape, headers=as_first).status_code
            == 400
        )
        dotted = httpx.put(api + first + "/checkpoints/x..y", content=targz({"a": b"1"}), headers=as_first)
        assert dotted.status_code == 400 and "invalid checkpoint name" in dotted.json()["detail"]
        good = httpx.put(
            api + first + "/checkpoints/best", content=targz({"w.bin": b"1234"}), headers=as_first
        )
        assert good.status_code == 201 and good.json()["summary"] == {"step": 0, "loss": 1.0}
        assert [c["name"] for c in platform.json("model", "ls", first)] == ["best"]
        assert not list(platform.home.rglob("outside.txt"))
    finally:
        for name in (first, second):
            platform.nsml("stop", name, check=False)
    # a finished session's token is dead
    assert httpx.post(api + first + "/reports", json=report, headers=as_first).status_code == 401


def test_validation_errors_are_one_line(platform: Platform) -> None:
    info = platform.server_info() if (platform.home / "server.json").exists() else None
    if info is None:
        platform.nsml("dataset", "ls")
        info = platform.server_info()
    headers = {"Authorization": f"Bearer {info['token']}"}
    response = httpx.post(info["url"] + "/api/v1/sessions", json={"dataset": "demo_kin"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: code_upload")
