"""Isolation: training and evaluation run under bubblewrap; without it, evaluation is
refused unless the operator allows it, and the platform says so."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from conftest import Platform, running_platform

PROBE = """
    import argparse, json, os, socket, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--home")
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    config = parser.parse_args()
    try:
        socket.create_connection(("127.0.0.1", config.port), timeout=2).close()
        network = "reachable"
    except OSError as exc:
        network = "unreachable"
    print(json.dumps({
        "network": network,
        "home_visible": os.path.exists(config.home),
        "dataset": sorted(os.listdir(nsml.DATASET_PATH)),
        "tokens_in_env": sorted(k for k in os.environ if "TOKEN" in k),
    }), flush=True)
    nsml.report(step=0, reached_api=1)  # the API is reached through the socket, not the network
    nsml.bind(save=lambda d, **k: open(os.path.join(d, "w"), "w").write("1"),
              load=lambda d, **k: None, infer=lambda data, **k: [(0.5, 1) for _ in data])
    if config.pause:
        nsml.paused(scope=locals())
    nsml.save("only")
"""


def _require_bwrap() -> None:
    if shutil.which("bwrap") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but bubblewrap is not installed; `make install` installs it")
        pytest.skip("bubblewrap (bwrap) is not installed")


def test_training_sees_its_train_split_and_nothing_else(platform: Platform) -> None:
    _require_bwrap()
    platform.nsml("dataset", "ls")
    port = platform.server_info()["url"].rsplit(":", 1)[1]
    folder = platform.project("probe", PROBE)
    name = platform.run(folder, "demo_kin", f"--port {port} --home {platform.home}")
    assert platform.wait(name)["status"] == "exited", platform.nsml("logs", name).stdout
    import json

    seen = json.loads(platform.nsml("logs", name).stdout.splitlines()[0])
    assert seen == {
        "network": "unreachable",
        "home_visible": False,
        "dataset": ["train"],
        "tokens_in_env": ["NSML_SESSION_TOKEN"],
    }
    assert platform.session(name)["summary"] is None
    assert [c["name"] for c in platform.json("model", "ls", name)] == ["only"]


@pytest.fixture(scope="module")
def unsandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "unsandboxed", NSML_SANDBOX="off") as instance:
        yield instance


def test_without_a_sandbox_evaluation_is_refused_unless_allowed(unsandboxed: Platform) -> None:
    unsandboxed.nsml("dataset", "ls")
    port = unsandboxed.server_info()["url"].rsplit(":", 1)[1]
    folder = unsandboxed.project("probe", PROBE)
    name = unsandboxed.run(folder, "demo_kin", f"--port {port} --home {unsandboxed.home}")
    assert unsandboxed.wait(name)["status"] == "exited"
    assert "sessions run without a sandbox" in (unsandboxed.home / "server.log").read_text()

    refused = unsandboxed.nsml("submit", name, "only", check=False)
    assert refused.returncode == 1
    assert "only evaluated in a sandbox" in refused.stderr and "--allow-unsandboxed" in refused.stderr
    assert unsandboxed.json("board", "demo_kin", "--private")["submissions"] == []

    unsandboxed.stop_server()
    unsandboxed.env["NSML_ALLOW_UNSANDBOXED"] = "1"
    allowed = unsandboxed.json("submit", name, "only")
    assert allowed["status"] == "scored"


def test_platform_state_stays_hidden_inside_a_bound_python_path(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from nsml.runners import sandbox

    _require_bwrap()
    library = tmp_path / "lib"  # say, a home directory on PYTHONPATH
    (library / "nsml_home").mkdir(parents=True)
    (library / "nsml_home" / "nsml.db").write_text("secret")
    (library / "helper.py").write_text("VALUE = 1\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(library)])
    code = "import os, helper; print(helper.VALUE, os.path.exists(os.environ['LIB'] + '/nsml_home'))"
    argv = sandbox.wrap(
        [sys.executable, "-c", code],
        sandbox.Mounts(work=work),
        {"LIB": str(library), "PYTHONPATH": str(library)},
        hide=(library / "nsml_home",),
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 False"  # not bound at all, not merely covered
