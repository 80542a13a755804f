"""Metric curves: event files per session, `nsml plot` PNGs, TensorBoard over sessions."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx

from conftest import NSML, TRAIN_2018, Platform

BLUE = (0x1F, 0x77, 0xB4)  # matplotlib's first line colour
ORANGE = (0xFF, 0x7F, 0x0E)  # and its second: the second session's curves


def _pixels(png: Path, colour: tuple[int, int, int] = BLUE) -> int:
    import matplotlib.image

    image = matplotlib.image.imread(png)[:, :, :3] * 255
    close = (abs(image - colour) < 30).all(axis=2)
    return int(close.sum())


def test_event_files_and_png(platform: Platform, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = platform.project("plotted", TRAIN_2018)
    name = platform.run(folder, "demo_kin", "--epochs 4")
    platform.wait(name)
    session_id = max(int(p.name) for p in (platform.home / "sessions").iterdir() if p.name.isdigit())
    events = EventAccumulator(str(platform.home / "sessions" / str(session_id) / "tensorboard"))
    events.Reload()
    assert {"train/loss", "epoch"} <= set(events.Tags()["scalars"])
    losses = [(e.step, round(e.value, 4)) for e in events.Scalars("train/loss")]
    assert losses == [(0, 1.0), (1, 0.5), (2, 0.3333), (3, 0.25)]

    target = tmp_path / "curves.png"
    result = platform.nsml("plot", name, "-o", str(target))
    assert "train/loss" in result.stdout and target.stat().st_size > 10_000
    assert _pixels(target) > 200 and _pixels(target, ORANGE) == 0  # one session, one colour

    empty = platform.run(platform.project("silent", "print('no reports')\n"))
    platform.wait(empty)
    blank = platform.nsml("plot", empty, "-o", str(tmp_path / "none.png"), check=False)
    assert blank.returncode == 1 and "nothing to plot" in blank.stderr

    other = platform.run(folder, "demo_kin", "--epochs 2")
    platform.wait(other)
    both = tmp_path / "both.png"
    platform.nsml("plot", name, other, "-o", str(both))
    assert _pixels(both) > 200 and _pixels(both, ORANGE) > 200  # both sessions drawn side by side


def test_tensorboard_serves_the_sessions(platform: Platform) -> None:
    folder = platform.project("tb", TRAIN_2018)
    name = platform.run(folder, "demo_kin", "--epochs 3")
    other = platform.run(folder, "demo_kin", "--epochs 2")
    platform.wait(name)
    platform.wait(other)
    process = subprocess.Popen(
        [NSML, "plot", name, other, "--tensorboard"],
        cwd=platform.workdir,
        env=platform.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 90
        assert process.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url, "TensorBoard did not start"
        tags = {}
        runs = [n.replace("/", "_") for n in (name, other)]
        while time.monotonic() < deadline:
            tags = httpx.get(url + "/data/plugin/scalars/tags", timeout=10).json()
            if all(run in tags for run in runs):
                break
            time.sleep(0.5)
        assert all("train/loss" in tags.get(run, {}) for run in runs), tags
        points = httpx.get(
            url + "/data/plugin/scalars/scalars", params={"run": runs[1], "tag": "train/loss"}, timeout=10
        ).json()
        assert [round(p[2], 4) for p in points] == [1.0, 0.5]  # [wall time, step, value]
        assert [p[1] for p in points] == [0, 1] and all(p[0] > 1e9 for p in points)
    finally:
        process.terminate()
        process.wait(timeout=30)
    leftovers = subprocess.run(["pgrep", "-f", "nsml-tensorboard-"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "TensorBoard outlived nsml plot"
