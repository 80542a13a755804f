"""The server's measured hot spots, each alone: a login burst, and kept-alive requests.

Why this exists: ``benchmarks/load.py`` shows a whole hackathon, where every figure moves
with everything else. This isolates two of the causes it found. A burst of ``--logins``
password logins spread over ``--seconds`` (each person's own connection, made before
the clock starts) while one reader fetches a board every 0.2 s: login p50 and max, the
answers' status codes, the board's p50 meanwhile and the server's peak memory. Then
``--requests`` GETs of ``/sessions`` on one kept-alive connection: without TCP_NODELAY
each waited ~40 ms for a delayed ACK. Run it as ``nice -n 10 .venv/bin/python
benchmarks/hot_spots.py``; only 127.0.0.1 is contacted and the temporary NSML_HOME is
removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _platform import NSML

TOKEN = "hot-spots-admin"
PASSWORD = "hot spots password"


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "NSML_HOME": str(home), "NSML_SERVER_TOKEN": TOKEN}
    command = [NSML, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("error: the server did not start")


def login_burst(url: str, logins: int, seconds: float) -> str:
    admin = {"Authorization": f"Bearer {TOKEN}"}
    for i in range(logins):
        body = {"name": f"u{i}", "password": PASSWORD}
        httpx.post(url + "/admin/users", headers=admin, json=body, timeout=60).raise_for_status()
    clients = [httpx.Client(timeout=120) for _ in range(logins)]
    latencies: list[float] = []
    codes: set[int] = set()
    reads: list[float] = []
    done = threading.Event()

    def login(i: int) -> None:
        time.sleep(i * seconds / logins)
        started = time.perf_counter()
        answer = clients[i].post(url + "/auth/login", json={"name": f"u{i}", "password": PASSWORD})
        latencies.append(time.perf_counter() - started)
        codes.add(answer.status_code)

    def read_board() -> None:
        with httpx.Client(headers=admin, timeout=120) as reader:
            while not done.is_set():
                started = time.perf_counter()
                reader.get(url + "/datasets/demo_kin/board")
                reads.append(time.perf_counter() - started)
                time.sleep(0.2)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(logins)]
    board = threading.Thread(target=read_board)
    board.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    board.join()
    for client in clients:
        client.close()
    return (
        f"{logins} logins in {seconds:g} s: p50 {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s, status {sorted(codes)}; "
        f"board p50 {statistics.median(reads) * 1000:.0f} ms meanwhile"
    )


def kept_alive(url: str, requests: int) -> str:
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        client.get(url + "/sessions")
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(url + "/sessions", params={"all": True})
            times.append((time.perf_counter() - started) * 1000)
    return (
        f"{requests} kept-alive GET /sessions: p50 {statistics.median(times):.1f} ms, min {min(times):.1f} ms"
    )


def peak_memory_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=100, help="people logging in")
    parser.add_argument("--seconds", type=float, default=10, help="over how long")
    parser.add_argument("--requests", type=int, default=40, help="kept-alive requests")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nsml-hot-"))
    process, url = start_server(home)
    try:
        print(login_burst(url, args.logins, args.seconds))
        print(kept_alive(url, args.requests))
        print(f"server peak memory {peak_memory_mb(process.pid)} MiB")
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
