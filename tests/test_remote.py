"""A shared deployment: `nsml server start --host --port --db` in the foreground, and
clients that reach it through NSML_SERVER_URL and NSML_TOKEN from elsewhere."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from conftest import NSML, TRAIN_2018, Platform


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_foreground_server_serves_remote_clients(tmp_path: Path) -> None:
    port = _free_port()
    home, db = tmp_path / "server-home", tmp_path / "elsewhere" / "platform.db"
    db.parent.mkdir()
    env = {**os.environ, "NSML_HOME": str(home), "NSML_SERVER_TOKEN": "shared-secret-token"}
    server = subprocess.Popen(
        [NSML, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--db", f"sqlite:///{db}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                headers = {"Authorization": "Bearer shared-secret-token"}
                if httpx.get(url + "/api/v1/health", headers=headers).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        client = Platform(tmp_path / "client-home", tmp_path / "work")
        client.workdir.mkdir()
        client.env.update(NSML_SERVER_URL=url, NSML_TOKEN="shared-secret-token")
        assert {"demo_kin", "demo_movie"} <= {d["name"] for d in client.json("dataset", "ls")}
        name = client.run(client.project("remote", TRAIN_2018), args="--epochs 2")
        assert "epoch 1 done" in client.nsml("logs", "-f", name).stdout
        assert [c["name"] for c in client.json("model", "ls", name)] == ["0", "1"]
        assert db.exists() and not (home / "nsml.db").exists()
        assert not (tmp_path / "client-home").exists()  # a remote client keeps no local state

        client.env["NSML_TOKEN"] = "wrong"
        refused = client.nsml("ps", check=False)
        assert refused.returncode == 1 and "refuses the token" in refused.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    # uvicorn re-raises the signal after its graceful shutdown, which removed server.json
    assert server.returncode in (0, -signal.SIGTERM), output
    assert not (home / "server.json").exists()
    assert f"127.0.0.1:{port}" in output
