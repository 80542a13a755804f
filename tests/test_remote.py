"""A shared deployment: `nsml server start --host --port --db` in the foreground, and
clients that reach it through NSML_SERVER_URL and NSML_TOKEN from elsewhere."""

from __future__ import annotations

import signal
from pathlib import Path

from conftest import TRAIN_2018, ForegroundServer, Platform


def test_foreground_server_serves_remote_clients(tmp_path: Path) -> None:
    home, db = tmp_path / "server-home", tmp_path / "elsewhere" / "platform.db"
    db.parent.mkdir()
    server = ForegroundServer(home, "shared-secret-token", "--db", f"sqlite:///{db}")
    try:
        url = server.url
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
        returncode = server.stop()
    output = server.output()
    # uvicorn re-raises the signal after its graceful shutdown, which removed server.json
    assert returncode in (0, -signal.SIGTERM), output
    assert not (home / "server.json").exists()
    assert f"127.0.0.1:{server.port}" in output
