"""Sessions and submissions on a real Ray cluster (a head and worker nodes on 127.0.0.1).

The server runs with ``--runner ray``; every session and evaluation is an actor on a
worker node that fetches the train split over HTTP and reaches the server with its
session token (through the sandbox's forwarded socket when bubblewrap works).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    DEMO,
    HOLD,
    LONG,
    NSML,
    RULE_SCRIPT,
    TRAIN_2018,
    ForegroundServer,
    Platform,
    assert_test_labels_out_of_reach,
    client_platform,
    gpus_seen,
    processes_with,
    rule_scores,
    running_platform,
    second_user,
)
from hostile_scripts import ESCAPE, MEMORY_HOG

cluster_utils = pytest.importorskip("ray.cluster_utils", reason="Ray is not installed (pip install .[ray])")

NODE_LINE = re.compile(r"\[nsml\] on Ray node 127\.0\.0\.1 \(([0-9a-f]{12})\)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A head that runs nothing (0 CPUs) and one worker node with 2 CPUs."""
    before = os.environ.get("NSML_RAY_WORKDIR")
    os.environ["NSML_RAY_WORKDIR"] = str(tmp_path_factory.mktemp("ray-nodes"))  # the nodes inherit it
    instance = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    try:
        instance.add_node(num_cpus=2, node_ip_address="127.0.0.1")
        instance.wait_for_nodes()
        yield instance
    finally:
        instance.shutdown()
        if before is None:
            os.environ.pop("NSML_RAY_WORKDIR", None)
        else:
            os.environ["NSML_RAY_WORKDIR"] = before


@pytest.fixture(scope="module")
def ray_platform(tmp_path_factory: pytest.TempPathFactory, cluster: Any) -> Iterator[Platform]:
    with running_platform(
        tmp_path_factory, "ray", NSML_RUNNER="ray", NSML_RAY_ADDRESS=cluster.address
    ) as instance:
        yield instance


def _log(platform: Platform, name: str) -> str:
    return platform.nsml("logs", name).stdout


def _wait_for_log(platform: Platform, name: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = _log(platform, name)
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in the log of {name}:\n{_log(platform, name)}")


def test_session_runs_on_a_worker_and_its_checkpoints_reach_the_server(ray_platform: Platform) -> None:
    folder = ray_platform.project("ray_train", TRAIN_2018)
    name = ray_platform.run(folder, "demo_kin", "--epochs 3")
    session = ray_platform.wait(name, timeout=120)
    log = _log(ray_platform, name)
    assert session["status"] == "exited", log
    assert NODE_LINE.search(log), log
    train_size = len((DEMO / "demo_kin" / "train" / "train_data").read_text().splitlines())
    assert f"training on {train_size} examples; test visible: False" in log  # fetched by the worker
    assert "fetching the dataset's train split" in log
    assert [c["name"] for c in ray_platform.json("model", "ls", name)] == ["0", "1", "2"]
    assert ray_platform.session(name)["summary"]["epoch"] == 2  # reports came back over HTTP


def test_an_automl_trial_is_a_ray_session(ray_platform: Platform) -> None:
    folder = ray_platform.project("ray_automl", TRAIN_2018)
    spec = (
        "{metric: train/loss, direction: minimize, trials: 1, params: {epochs: {type: int, low: 2, high: 3}}}"
    )
    (folder / "sweep.yaml").write_text(spec)
    study = ray_platform.nsml(
        "automl", "run", "-d", "demo_kin", "--spec", "sweep.yaml", cwd=folder
    ).stdout.strip()
    deadline = time.monotonic() + 120
    while (detail := ray_platform.json("automl", "show", study))["state"] == "running":
        assert time.monotonic() < deadline, detail
        time.sleep(0.5)
    (trial,) = detail["trials"]
    assert trial["state"] == "complete" and detail["state"] == "finished", detail
    assert NODE_LINE.search(_log(ray_platform, trial["session"]))
    assert trial["step"] == trial["params"]["epochs"] - 1


def test_logs_follow_and_stop_end_the_ray_actor(ray_platform: Platform) -> None:
    folder = ray_platform.project("ray_long", TRAIN_2018)
    name = ray_platform.run(folder, "demo_kin", "--epochs 200 --sleep 0.5")
    follow = subprocess.Popen(
        [NSML, "logs", "-f", name], cwd=ray_platform.workdir, env=ray_platform.env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert follow.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 90
        while not any("epoch 1 done" in line for line in seen) and time.monotonic() < deadline:
            line = follow.stdout.readline()  # lines arrive while the actor runs on the worker
            if not line:
                break
            seen.append(line)
        assert any("epoch 1 done" in line for line in seen), "".join(seen)
        assert ray_platform.session(name)["status"] == "running"
        ray_platform.nsml("stop", name)
        rest, _ = follow.communicate(timeout=30)  # the stream ends with the session
    finally:
        follow.kill()
    followed = "".join(seen) + rest
    assert "session stopped" in followed and "epoch 199 done" not in followed
    session = ray_platform.wait(name, timeout=30)
    assert session["status"] == "stopped"
    log = _log(ray_platform, name)
    assert "epoch 199 done" not in log and "session stopped" in log
    assert "fetching the dataset's train split" not in log  # cached on the node by the first session


def test_submission_is_evaluated_on_a_worker_and_scored_on_the_server(ray_platform: Platform) -> None:
    folder = ray_platform.project("ray_submit", RULE_SCRIPT)
    name = ray_platform.run(folder, "demo_kin", "--task kin")
    assert ray_platform.wait(name, timeout=120)["status"] == "exited", _log(ray_platform, name)
    result = ray_platform.nsml("submit", name, "best", "-b", "16", timeout=180)
    public, _ = rule_scores(DEMO / "demo_kin", "demo_kin", "kin")
    assert f"score {public:.6g}" in result.stdout, result.stdout
    [row] = ray_platform.json("board", "demo_kin")["rows"]
    assert row["score"] == pytest.approx(public)


THREADS = """
    import os, sys, time
    print("THREADS", os.environ.get("OMP_NUM_THREADS"), flush=True)
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 0):
        time.sleep(0.1)
"""


def test_a_session_reserves_the_cpus_it_asks_for(ray_platform: Platform) -> None:
    folder = ray_platform.project("ray_cpus", THREADS)
    too_many = ray_platform.nsml("run", "-d", "demo_kin", "-c", "3", cwd=folder, check=False)
    assert too_many.returncode == 1
    assert "one machine of this cluster has at most 2 CPUs, so -c 3 could never start" in too_many.stderr
    whole_node = ray_platform.json("run", "-d", "demo_kin", "-c", "2", "-a", "600", cwd=folder)["name"]
    ray_platform.wait(whole_node, ("running",), timeout=60)
    assert ray_platform.session(whole_node)["cpus"] == 2
    waiting = ray_platform.json("run", "-d", "demo_kin", cwd=folder)["name"]  # the default: 1 CPU
    deadline = time.monotonic() + 30
    while "waiting for a Ray node with 1 CPU" not in (ray_platform.session(waiting)["reason"] or ""):
        assert time.monotonic() < deadline, ray_platform.session(waiting)
        time.sleep(0.2)
    assert ray_platform.session(waiting)["status"] == "queued"
    assert "THREADS 2" in _wait_for_log(ray_platform, whole_node, "THREADS")
    ray_platform.nsml("stop", whole_node)
    assert ray_platform.wait(waiting, timeout=60)["status"] == "exited", _log(ray_platform, waiting)


def _ray_worker_running(marker: str) -> int:
    """The pid of the Ray worker (``ray::...``) whose descendants include the process
    with ``marker`` on its command line: the actor hosting that session."""

    def cmdline(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""

    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    pid = next((pid for pid in pids if marker in cmdline(pid)), None)
    assert pid is not None, f"no process has {marker} on its command line"
    while not cmdline(pid).startswith("ray::"):
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        assert pid > 1, f"no Ray worker above the process of {marker}"
    return pid


def test_a_killed_ray_worker_fails_its_session_with_the_reason_and_frees_its_cpus(
    ray_platform: Platform,
) -> None:
    folder = ray_platform.project("ray_victim", HOLD)
    victim = ray_platform.json("run", "-d", "demo_kin", "-c", "2", "-a", "600 ray-victim", cwd=folder)["name"]
    _wait_for_log(ray_platform, victim, "GPUS")
    os.kill(_ray_worker_running("ray-victim"), signal.SIGKILL)
    session = ray_platform.wait(victim, timeout=90)
    assert session["status"] == "failed", _log(ray_platform, victim)
    assert "the Ray worker running the session was lost" in (session["reason"] or ""), session
    # the only node's two CPUs are free again: a session that needs both of them runs
    after = ray_platform.json("run", "-d", "demo_kin", "-c", "2", "-a", "1", cwd=folder)["name"]
    assert ray_platform.wait(after, timeout=90)["status"] == "exited", _log(ray_platform, after)


def test_a_freed_ray_node_goes_to_the_user_with_fewest_sessions(
    ray_platform: Platform, tmp_path: Path
) -> None:
    alice = ray_platform
    bob = second_user(alice, "bob", tmp_path)
    folder = alice.project("ray_hog", TRAIN_2018)
    hogs = [alice.run(folder, args=LONG) for _ in range(2)]  # the worker's 2 CPUs
    for name in hogs:
        alice.wait(name, ("running",), timeout=90)
    more = [alice.run(folder, args=LONG) for _ in range(2)]  # queued before bob's
    deadline = time.monotonic() + 30
    while "No machine available" not in (alice.session(more[0])["reason"] or ""):
        assert time.monotonic() < deadline, alice.session(more[0])
        time.sleep(0.2)
    theirs = bob.run(bob.project("ray_mine", TRAIN_2018), args=LONG)
    try:
        alice.nsml("stop", hogs[0])
        assert bob.wait(theirs, ("running",), timeout=90)["status"] == "running"
        assert [alice.session(name)["status"] for name in more] == ["queued", "queued"]
        alice.nsml("stop", hogs[1])  # then alice's, the earliest she queued
        alice.wait(more[0], ("running",), timeout=90)
        assert alice.session(more[1])["status"] == "queued"
    finally:
        for name in (*more, *hogs):
            alice.nsml("stop", name, check=False)
        bob.nsml("stop", theirs, check=False)


def test_test_labels_stay_on_the_server_during_a_ray_evaluation(
    ray_platform: Platform, tmp_path: Path
) -> None:
    assert_test_labels_out_of_reach(ray_platform, tmp_path)  # the hunt runs on a worker


def test_a_ray_session_has_no_capability_and_its_limits_hold(ray_platform: Platform) -> None:
    name = ray_platform.run(ray_platform.project("ray_escape", ESCAPE), "demo_kin")
    assert ray_platform.wait(name, timeout=120)["status"] == "exited", _log(ray_platform, name)
    seen = json.loads(_log(ray_platform, name).split("ESCAPE ", 1)[1].splitlines()[0])
    assert seen["cap_eff"] == "0000000000000000" and seen["uid"] != 0
    for attempt in ("remount_train", "umount_train", "unshare_user", "unshare_mount"):
        assert seen[attempt] != 0, (attempt, seen)
    for target in ("write_train", "write_python", "write_platform", "write_usr"):
        assert seen[target].startswith("refused"), (target, seen)

    folder = ray_platform.project("ray_hog", MEMORY_HOG)
    created = ray_platform.json("run", "-d", "demo_kin", "--memory", "200M", cwd=folder)
    ended = ray_platform.wait(created["name"], timeout=120)
    assert ended["status"] == "failed"
    assert ended["reason"].startswith("killed: memory limit 200 MiB exceeded"), ended


def test_gpu_sessions_wait_for_a_ray_node_with_free_gpus(ray_platform: Platform, cluster: Any) -> None:
    folder = ray_platform.project("ray_gpu", HOLD)
    refused = ray_platform.nsml("run", "-d", "demo_kin", "-g", "1", cwd=folder, check=False)
    assert refused.returncode == 1 and "at most 0 GPUs" in refused.stderr  # no node has one yet
    cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address="127.0.0.1")  # a declared GPU
    cluster.wait_for_nodes()
    first = ray_platform.json("run", "-d", "demo_kin", "-g", "1", "-a", "600", cwd=folder)["name"]
    ray_platform.wait(first, ("running",), timeout=60)
    second = ray_platform.json("run", "-d", "demo_kin", "-g", "1", cwd=folder)["name"]
    ray_platform.wait(second, ("queued",))
    deadline = time.monotonic() + 30
    while "No machine available" not in (ray_platform.session(second)["reason"] or ""):
        assert time.monotonic() < deadline, ray_platform.session(second)
        time.sleep(0.2)
    assert gpus_seen(ray_platform, first) == ("0", "1")
    ray_platform.nsml("stop", first)
    assert ray_platform.wait(second, timeout=60)["status"] == "exited", _log(ray_platform, second)
    assert gpus_seen(ray_platform, second) == ("0", "1")


def test_a_worker_that_dies_fails_its_session_with_the_reason(ray_platform: Platform, cluster: Any) -> None:
    spare = cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    folder = ray_platform.project("ray_doomed", TRAIN_2018)
    name = ray_platform.run(folder, "demo_kin", "--epochs 200 --sleep 0.5")
    log = _wait_for_log(ray_platform, name, "epoch 0 done")
    node_prefix = NODE_LINE.search(log).group(1)  # type: ignore[union-attr]
    [node] = [n for n in cluster.list_all_nodes() if n.node_id.startswith(node_prefix)]
    cluster.remove_node(node, allow_graceful=False)
    session = ray_platform.wait(name, timeout=90)
    assert session["status"] == "failed", _log(ray_platform, name)
    assert "Ray worker running the session was lost" in (session["reason"] or "")
    if node is not spare:  # the module's other node is gone: keep one for later tests
        cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()


LEFT_BEHIND = """
    import os, pathlib
    left = [str(p) for p in (pathlib.Path("/tmp/left-by-a-session"), pathlib.Path("left.txt")) if p.exists()]
    print("LEFT", left, os.environ.get("LEFT_BY_A_SESSION"), flush=True)
    pathlib.Path("/tmp/left-by-a-session").write_text("x")
    pathlib.Path("left.txt").write_text("x")
    os.environ["LEFT_BY_A_SESSION"] = "1"
    os.putenv("LEFT_BY_A_SESSION", "1")
"""
LAUNCHER = re.compile(r"launcher (\d+) run (\d+)")
CLUSTER_WHOLE = """
import sys, time, ray
ray.init(address=sys.argv[1], _node_ip_address="127.0.0.1", log_to_driver=False)
deadline = time.monotonic() + 30
while ray.available_resources().get("CPU") != ray.cluster_resources().get("CPU"):
    if time.monotonic() > deadline:
        sys.exit(f"still held: {ray.available_resources()} of {ray.cluster_resources()}")
    time.sleep(0.2)
"""


def test_consecutive_ray_sessions_share_a_warm_launcher_and_nothing_else(
    ray_platform: Platform, cluster: Any
) -> None:
    folder = ray_platform.project("ray_warm", LEFT_BEHIND)
    launchers = []
    for _ in range(2):
        name = ray_platform.run(folder, "demo_kin")
        assert ray_platform.wait(name, timeout=90)["status"] == "exited", _log(ray_platform, name)
        log = _log(ray_platform, name)
        assert "LEFT [] None" in log, log  # no file in /tmp or the work dir, no variable
        launchers.append(LAUNCHER.search(log).groups())  # type: ignore[union-attr]
    (first_pid, first_run), (second_pid, second_run) = launchers
    assert second_pid == first_pid and int(second_run) == int(first_run) + 1, launchers

    ray_platform.stop_server()  # its warm actors go with it and the cluster is whole again
    whole = subprocess.run(
        [sys.executable, "-c", CLUSTER_WHOLE, cluster.address],
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},  # read when ray is imported
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert whole.returncode == 0, whole.stdout + whole.stderr[-2000:]


def test_a_ray_server_without_a_cluster_says_so(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_platform(tmp_path_factory, "ray-bad") as platform:
        unreachable = platform.nsml(
            "server", "start", "--runner", "ray", "--ray-address", "127.0.0.1:1", check=False
        )
        assert unreachable.returncode == 1
        assert "no Ray cluster answers at 127.0.0.1:1" in unreachable.stderr
        platform.env["NSML_RAY_WARM_ACTORS"] = "many"
        unclear = platform.nsml(
            "server", "start", "--runner", "ray", "--ray-address", "127.0.0.1:1", check=False
        )
        assert (
            unclear.returncode == 1 and "NSML_RAY_WARM_ACTORS='many' is not a whole number" in unclear.stderr
        )
        del platform.env["NSML_RAY_WARM_ACTORS"]
        missing = platform.nsml("server", "start", "--runner", "ray", check=False)
        assert missing.returncode == 1 and "--runner ray needs --ray-address" in missing.stderr
        assert not (platform.home / "server.json").exists()


def test_a_killed_servers_ray_sessions_fail_on_the_survivor_and_their_actors_end(
    tmp_path_factory: pytest.TempPathFactory, cluster: Any
) -> None:
    """Two servers on one database and one cluster; A is SIGKILLed mid-run. Its actors
    belong to its Ray driver and end with it; B fails the session with the reason."""
    base = tmp_path_factory.mktemp("ray-leases")
    clients = []
    servers = []
    try:
        for server_id in ("ray-a", "ray-b"):
            env = {"NSML_RUNNER": "ray", "NSML_RAY_ADDRESS": cluster.address, "NSML_SERVER_ID": server_id}
            server = ForegroundServer(base / "home", f"token-{server_id}", env={**env, "NSML_LEASE_S": "6"},
                                      log=base / f"{server_id}.log")  # fmt: skip
            servers.append(server)
            client = client_platform(base, server_id)
            client.env.update(NSML_SERVER_URL=server.url, NSML_TOKEN=server.token)
            clients.append(client)
        via_a, via_b = clients
        tag = f"ray-lease-{time.time_ns()}"
        name = via_a.run(via_a.project("ray_lease", TRAIN_2018), "demo_kin", f"{LONG} --tag {tag}")
        _wait_for_log(via_a, name, "epoch 0 done")
        assert processes_with(tag)
        servers[0].process.send_signal(signal.SIGKILL)
        servers[0].process.wait(timeout=10)
        failed = via_b.wait(name, ("failed",), timeout=30)
        assert "its server ray-a stopped answering" in failed["reason"]
        deadline = time.monotonic() + 30
        while processes_with(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with(tag) == [], "the actor outlived the server that drove it"
    finally:
        for server in servers:
            server.stop()


def test_a_session_that_cannot_start_on_ray_says_why_in_one_plain_line() -> None:
    """Ray wraps a task's error; its first line names only the actor method, in terminal
    colours. The reason shown is the task's own error."""
    from ray.exceptions import RayTaskError

    from nsml.runners.ray_evaluation import first_line

    wrapped = RayTaskError(
        "SessionHost.start",
        "\x1b[36mray::SessionHost.start()\x1b[39m (pid=1, ip=127.0.0.1)\nTraceback ...",
        FileNotFoundError(2, "No such file or directory", "/nsml/work/main.py"),
    )
    assert first_line(wrapped) == (
        "FileNotFoundError: [Errno 2] No such file or directory: '/nsml/work/main.py'"
    )
    assert first_line(RuntimeError("\x1b[31mred\x1b[0m\nmore")) == "red"
    assert first_line(RuntimeError("")) == "RuntimeError"
