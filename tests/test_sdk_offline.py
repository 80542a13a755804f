"""The same 2018 script runs off the platform: reports printed, checkpoints local."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import TRAIN_2018


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSML_")}
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )


def test_2018_script_runs_locally(tmp_path: Path) -> None:
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "train_data").write_text("a\tb\nc\td\n")
    (tmp_path / "data" / "train" / "train_label").write_text("1\n0\n")
    script = TRAIN_2018.replace(
        "    nsml.bind(save=save, load=load, infer=infer)",
        "    nsml.bind(save=save, load=load, infer=infer)\n"
        "    assert not nsml.IS_ON_NSML and not nsml.HAS_DATASET and nsml.GPU_NUM == 0\n"
        "    nsml.DATASET_PATH = 'data'",
    )
    (tmp_path / "main.py").write_text(textwrap.dedent(script))
    result = _run(tmp_path, "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "[nsml] step 1: epoch=1 train/loss=0.5 (summary)" in result.stdout
    assert (tmp_path / "nsml_local" / "checkpoints" / "1" / "model.json").read_text() == '{"weights": 2}'


def test_load_and_infer_locally(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        textwrap.dedent("""
        import os, nsml
        state = {"w": 0}
        def save(d, **kw):
            open(os.path.join(d, "w"), "w").write(str(kw["scale"] * 21))
        def load(d, **kw):
            state["w"] = int(open(os.path.join(d, "w")).read())
        def infer(data, **kw):
            return [(0, state["w"]) for _ in data]
        nsml.bind(save=save, load=load, infer=infer, scale=2)
        nsml.save("best")
        nsml.load("best")
        print(nsml.infer(["x", "y"]))
        try:
            nsml.load("missing")
        except FileNotFoundError as exc:
            print("missing:", exc)
    """)
    )
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[(0, 42), (0, 42)]" in result.stdout
    assert "missing: nsml.load: no local checkpoint 'missing'" in result.stdout


def test_report_values(tmp_path: Path) -> None:
    import pytest

    from nsml.sdk.reporting import jsonable

    class Scalar:
        def item(self) -> float:
            return 0.25

    assert jsonable("x", Scalar()) == 0.25
    assert jsonable("x", float("nan")) is None
    assert jsonable("x", True) is True
    with pytest.raises(TypeError, match="x=.*not JSON-serialisable"):
        jsonable("x", [1, 2])
    # what the server would refuse (and with it the whole batch) becomes what it stores
    assert jsonable("x", 2**63 - 1) == 2**63 - 1
    assert jsonable("x", 2**70) == float(2**70)
    assert jsonable("x", 10**400) is None
    import nsml

    with pytest.raises(ValueError, match="step 2147483648 is out of range"):
        nsml.report(step=2**31, loss=1.0)


def test_save_without_bind_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import nsml\nnsml.save(1)\n")
    result = _run(tmp_path)
    assert result.returncode == 1
    assert "call nsml.bind(save=..., load=...) first" in result.stderr


def test_import_nsml_stays_light() -> None:
    code = (
        "import sys, nsml; print(any(m.startswith(('httpx', 'fastapi', 'sqlalchemy')) for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"


def test_server_cli_and_client_do_not_load_the_sdk() -> None:
    """Only a training script's use of ``nsml.<name>`` reads the session's environment."""
    code = (
        "import nsml.server.app, nsml.cli.main, nsml.client.api, sys; assert 'nsml.sdk' not in sys.modules\n"
        "import nsml; assert 'nsml.sdk' not in sys.modules and 'report' in dir(nsml)\n"
        "from nsml import IS_ON_NSML, bind; assert 'nsml.sdk' in sys.modules\n"
        "assert nsml.report is sys.modules['nsml.sdk'].report and IS_ON_NSML is False"
    )
    env = {k: v for k, v in os.environ.items() if k != "NSML_ON_PLATFORM"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr


def test_wire_deadline_holds_against_a_trickling_sender() -> None:
    import socket
    import struct
    import threading
    import time

    import pytest

    from nsml import wire

    ours, theirs = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:
        theirs.sendall(struct.pack("!I", 1000))
        while not stop.is_set():
            theirs.sendall(b" ")
            time.sleep(0.05)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        wire.recv(ours, deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started < 2
    stop.set()
    sender.join(timeout=5)
    ours.close()
    theirs.close()


SAVE_STYLES = """
    import json, os, sys, nsml
    style = sys.argv[1]
    state = {"weights": [1, 2, 3]}
    def save(path, **kwargs):
        if style == "file":            # the 2018 movie baseline: torch.save(checkpoint, filename)
            with open(path, "w") as f:
                json.dump(state, f)
        elif style == "makedirs":      # the 2018 kin baseline
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "model.json"), "w") as f:
                json.dump(state, f)
        else:                          # writes into the folder without creating it
            with open(os.path.join(path, "model.json"), "w") as f:
                json.dump(state, f)
    def load(path, **kwargs):
        target = path if style == "file" else os.path.join(path, "model.json")
        print("LOADED", os.path.isfile(path), json.load(open(target)))
    nsml.bind(save=save, load=load)
    nsml.save("e1")
    nsml.load("e1")
"""


def test_save_gets_a_path_usable_as_a_file_or_a_folder(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(textwrap.dedent(SAVE_STYLES))
    for style, is_file in (("file", True), ("makedirs", False), ("into", False)):
        result = _run(tmp_path, style)
        assert result.returncode == 0, result.stderr
        assert f"LOADED {is_file} {{'weights': [1, 2, 3]}}" in result.stdout, result.stdout
