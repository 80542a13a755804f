"""An evaluation reply larger than its batch could need is refused before it is read.

One 185 MB reply used to take the server from ~115 MB to 1.75 GB of memory.
"""

from __future__ import annotations

from pathlib import Path

from conftest import Platform

SCRIPT = """
    import argparse, os, socket, struct
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--behave", default="flood")
    config = parser.parse_args()

    def infer(raw_data, **kwargs):
        if config.behave == "flood":  # past the SDK: announce 185 MB, then send it
            channel = socket.socket(fileno=os.dup(int(os.environ["NSML_EVAL_FD"])))
            size = 185_000_000
            channel.sendall(struct.pack("!I", size) + b"[")
            chunk, sent = b"0," * (1 << 19), 1
            while sent < size:
                channel.sendall(chunk)
                sent += len(chunk)
        return [("x" * 500_000, 1) for _ in raw_data]  # "big": the SDK says why it refuses

    nsml.bind(save=lambda d, **k: open(os.path.join(d, "w"), "w").write("1"),
              load=lambda d, **k: None, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())
    nsml.save("best")
"""


def _memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        return True
    except OSError:
        return False


def _train(platform: Platform, behave: str) -> str:
    folder = platform.project(f"replies_{behave}", SCRIPT)
    name = platform.run(folder, "demo_kin", f"--behave {behave}")
    assert platform.wait(name)["status"] == "exited", platform.nsml("logs", name).stdout
    return name


def test_a_flooding_reply_fails_the_submission_and_the_server_stays_small(platform: Platform) -> None:
    session = _train(platform, "flood")
    pid = platform.server_info()["pid"]
    before = _memory(pid, "VmRSS")
    exact_peak = _reset_peak(pid)
    result = platform.nsml("submit", session, "best", check=False)
    assert result.returncode == 1, result.stdout
    assert "reply was over the" in result.stderr and "185000000" not in result.stderr, result.stderr
    assert "one small prediction per input" in result.stderr
    record = platform.json("board", "demo_kin", "--private")["submissions"][0]
    assert record["status"] == "failed" and "reply was over the" in record["reason"]
    grown = (_memory(pid, "VmHWM") if exact_peak else _memory(pid, "VmRSS")) - before
    assert grown < 64 * 1024 * 1024, f"the server grew by {grown // (1024 * 1024)} MiB"


def test_an_oversized_reply_through_the_sdk_gets_a_reason(platform: Platform) -> None:
    session = _train(platform, "big")
    result = platform.nsml("submit", session, "best", "-b", "10", check=False)
    assert result.returncode == 1, result.stdout
    # the SDK refuses to send it and says so; an older SDK's reply is refused unread
    assert "one small prediction per input" in result.stderr, result.stderr
    assert "for a batch of 10 inputs, over the" in result.stderr or "bytes allowed" in result.stderr


def test_the_sdk_sends_a_reason_instead_of_an_oversized_reply() -> None:
    import socket

    from nsml import wire
    from nsml.sdk.serving import _reply

    ours, theirs = socket.socketpair()
    with ours, theirs:
        _reply(theirs, [(0.5, 1)] * 3, 3, 1000)
        assert wire.recv(ours, max_bytes=1000) == {"predictions": [[0.5, 1]] * 3}
        _reply(theirs, [("x" * 2000, 1)] * 3, 3, 1000)
        refused = wire.recv(ours, max_bytes=1000)
        assert refused["error"] == "reply" and "for a batch of 3 inputs" in refused["detail"]
        _reply(theirs, [("x" * 2000, 1)], 1, None)  # an older platform sets no limit
        try:
            wire.recv(ours, max_bytes=1000)
        except wire.MessageTooLarge as exc:
            assert exc.size > 2000 and exc.limit == 1000
        else:
            raise AssertionError("an oversized message was read")
