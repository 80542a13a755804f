"""AutoML studies end to end: trials are sessions, the pruner stops bad ones, a study
survives a restart, and nobody else sees or stops it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import ROOT, Platform, chromium, second_user
from nsml.schemas.automl_spec import SpecError, parse_spec

OUTPUT = ROOT / "test-output" / "web"

# minimizes valid/loss = x * (1 + 1/(step+1)); 2018 resume arguments so pruned trials can resume
TRIAL = """
    import argparse, os, time
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="-1")
    parser.add_argument("--x", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--pace", type=float, default=0.4)
    config = parser.parse_args()

    nsml.bind(save=lambda d, **k: open(os.path.join(d, "m"), "w").write("1"), load=lambda d, **k: None)
    if config.pause:
        nsml.paused(scope=locals())
    for step in range(int(config.iteration) + 1, config.steps):
        nsml.report(step=step, valid__loss=config.x * (1 + 1 / (step + 1)))
        nsml.save(step)
        time.sleep(config.pace)
"""

BASE_SPEC: dict[str, Any] = {
    "metric": "valid/loss",
    "direction": "minimize",
    "trials": 4,
    "parallel": 2,
    "sampler": "random",
    "seed": 6,  # proposes x = 1, 1, 9, 1: the third trial is the bad one
    "pruner": {"type": "median", "startup_trials": 1, "warmup_steps": 1},
    "params": {"x": {"type": "categorical", "choices": [1, 9]}},
}


def _start(platform: Platform, folder: Path, spec: dict[str, Any], *extra: str, name: str = "sweep") -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = platform.nsml("automl", "run", "-d", "demo_kin", "--spec", str(path), *extra, cwd=folder)
    return result.stdout.strip()


def _get(platform: Platform, path: str) -> Any:
    """A GET of the API as the CLI's user: polling through the CLI would cost a process a time."""
    info = platform.server_info()
    headers = {"Authorization": f"Bearer {info['token']}"}
    answer = httpx.get(f"{info['url']}/api/v1{path}", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _show(platform: Platform, study: str) -> dict[str, Any]:
    detail: dict[str, Any] = _get(platform, f"/automl/{study}")
    return detail


def _wait_study(platform: Platform, study: str, until: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    detail = _show(platform, study)
    while not until(detail):
        if time.monotonic() > deadline:
            raise AssertionError(f"study {study} did not get there in {timeout}s: {detail}")
        time.sleep(0.2)
        detail = _show(platform, study)
    return detail


@pytest.fixture(scope="module")
def folder(platform: Platform) -> Path:
    return platform.project("sweep", TRIAL)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"metric": 3}, "metric: must be the name"),
        ({"direction": "up"}, "direction: must be one of maximize, minimize"),
        ({"trials": "many"}, "trials: must be a whole number"),
        ({"parallel": 0}, "parallel: must be a whole number from 1"),
        ({"sampler": "bayes"}, "sampler: must be one of tpe, random, grid"),
        ({"pruner": "sometimes"}, "pruner: must be one of none, median, hyperband"),
        ({"params": {"lr": {"type": "float", "low": 0.1, "high": 0.1}}}, "params.lr: low (0.1) must be less"),
        ({"params": {"lr": {"type": "float", "low": 0, "high": 1, "log": True}}}, "needs low > 0"),
        ({"params": {"lr": {"type": "double", "low": 0, "high": 1}}}, "params.lr.type: must be one of"),
        ({"params": {"n": {"type": "int", "low": 1.5, "high": 4}}}, "params.n.low: must be a whole number"),
        ({"params": {"lr": {"type": "float", "low": 0, "high": 1, "by": 2}}}, "params.lr: unknown key 'by'"),
        ({"params": {"--x": {"type": "int", "low": 0, "high": 1}}}, "is not a usable name"),
        ({"params": {"m": {"type": "categorical", "choices": []}}}, "params.m.choices: must be a list"),
        ({"params": {}}, "params: must map each"),
        (
            {"sampler": "grid", "params": {"lr": {"type": "float", "low": 0, "high": 1}}},
            "grid search needs a step",
        ),
    ],
)
def test_each_spec_mistake_is_named_in_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({**BASE_SPEC, **change})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_grid_runs_at_most_its_points_and_values_become_arguments() -> None:
    spec = parse_spec(
        {
            "metric": "acc",
            "sampler": "grid",
            "trials": 40,
            "params": {
                "lr": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
                "model": {"type": "categorical", "choices": ["tfidf", "textcnn"]},
            },
        }
    )
    assert spec.budget == 6
    assert spec.arguments({"lr": 0.0031, "model": "tfidf"}) == ["--lr", "0.0031", "--model", "tfidf"]


def test_a_bad_spec_is_refused_by_the_cli_and_by_the_server(platform: Platform, folder: Path) -> None:
    (folder / "bad.yaml").write_text("metric: acc\nparams:\n  lr: {type: float, low: 1, high: 0}\n")
    result = platform.nsml("automl", "run", "-d", "demo_kin", "--spec", "bad.yaml", cwd=folder, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "params.lr: low (1.0) must be less than high (0.0)" in result.stderr
    (folder / "broken.yaml").write_text("metric: [acc\n")
    result = platform.nsml(
        "automl", "run", "-d", "demo_kin", "--spec", "broken.yaml", cwd=folder, check=False
    )
    assert result.returncode == 1 and "not valid YAML" in result.stderr
    platform.nsml("dataset", "ls")  # the server runs
    info = platform.server_info()
    answer = httpx.post(
        info["url"] + "/api/v1/automl",
        json={"dataset": "demo_kin", "code_upload": "x", "spec": {**BASE_SPEC, "trials": -1}},
        headers={"Authorization": f"Bearer {info['token']}"},
    )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("invalid spec: trials: must be a whole number")
    assert platform.json("automl", "ls") == []


@pytest.fixture(scope="module")
def pruned_study(platform: Platform, folder: Path) -> dict[str, Any]:
    """A finished study whose third trial was pruned, then resumed."""
    study = _start(platform, folder, BASE_SPEC, "-a", "--steps 4", "--resume-pruned")
    assert re.fullmatch(r"[\w.-]+-automl-\d+", study), study
    return _wait_study(platform, study, lambda d: d["state"] != "running")


def test_a_study_prunes_the_bad_trial_runs_trials_at_once_and_resumes_it(
    platform: Platform, pruned_study: dict[str, Any]
) -> None:
    detail, study = pruned_study, pruned_study["name"]
    assert detail["state"] == "finished", detail
    trials = {t["number"]: t for t in detail["trials"]}
    assert [trials[n]["params"]["x"] for n in range(4)] == [1, 1, 9, 1]
    bad = trials[2]
    assert bad["state"] == "pruned" and re.fullmatch(r"pruned at step [1-3]", bad["reason"]), bad
    resumed = [t for t in detail["trials"] if t["resumed_from"] == 2]
    assert len(resumed) == 1 and resumed[0]["state"] == "complete"
    assert resumed[0]["session"] == bad["session"]
    assert detail["best_value"] == pytest.approx(1.25) and detail["best_params"] == {"x": 1}
    assert detail["counts"] == {"complete": 4, "pruned": 1}

    sessions = {s["name"]: s for s in platform.json("ps", "-a")}
    first, second = (sessions[trials[n]["session"]] for n in (0, 1))
    assert first["args"] == ["--steps", "4", "--x", "1"]
    starts = [datetime.fromisoformat(s["started_at"]) for s in (first, second)]
    ends = [datetime.fromisoformat(s["ended_at"]) for s in (first, second)]
    assert max(starts) < min(ends), "parallel: 2 should run the first two trials at once"
    log = platform.nsml("logs", bad["session"]).stdout
    assert f"[nsml] session stopped: {bad['reason']}" in log
    assert "session resumed from checkpoint" in log
    listed = platform.json("automl", "ls")
    assert [s["name"] for s in listed] == [study] and listed[0]["state"] == "finished"
    shown = platform.nsml("automl", "show", study).stdout
    assert "pruned at step" in shown and "Best: trial" in shown
    assert _get(platform, f"/automl/{study}/importances") == {"importances": {"x": pytest.approx(1.0)}}


def test_a_study_survives_a_server_restart(platform: Platform, folder: Path) -> None:
    spec = {**BASE_SPEC, "trials": 2, "parallel": 1, "sampler": "grid", "pruner": "none"}
    spec["params"] = {"x": {"type": "int", "low": 1, "high": 2}}
    study = _start(platform, folder, spec, "-a", "--steps 8 --pace 0.3", name="restart")
    _wait_study(platform, study, lambda d: any(t["step"] is not None for t in d["trials"]))
    platform.stop_server()
    platform.nsml("automl", "ls")  # starts the server again
    detail = _wait_study(platform, study, lambda d: d["state"] != "running")
    assert detail["state"] == "finished", detail
    interrupted = [t for t in detail["trials"] if t["state"] == "failed"]
    assert len(interrupted) == 1 and "server restart" in interrupted[0]["reason"]
    done = [t for t in detail["trials"] if t["state"] == "complete"]
    assert sorted(t["params"]["x"] for t in done) == [1, 2]  # the interrupted values ran again


def test_only_the_owner_sees_and_stops_a_study(
    platform: Platform, folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spec = {**BASE_SPEC, "sampler": "tpe", "pruner": "none", "trials": 3}
    study = _start(platform, folder, spec, "-a", "--steps 60 --pace 0.5", name="long")
    running = _wait_study(platform, study, lambda d: sum(t["state"] == "running" for t in d["trials"]) == 2)
    sessions = [t["session"] for t in running["trials"] if t["state"] == "running"]
    other = second_user(platform, "mallory", tmp_path_factory.mktemp("automl-other"))
    for command in (("show", study), ("stop", study)):
        result = other.nsml("automl", *command, check=False)
        assert result.returncode == 1 and f"study '{study}' not found" in result.stderr
    assert other.json("automl", "ls") == []
    assert not {s["name"] for s in other.json("ps", "-a")} & set(sessions)
    assert platform.json("automl", "show", study)["state"] == "running"

    assert "stopped" in platform.nsml("automl", "stop", study).stdout
    for name in sessions:
        ended = platform.wait(name, timeout=20)
        assert ended["status"] == "stopped" and ended["reason"] == "the study was stopped"
    detail = platform.json("automl", "show", study)
    assert detail["state"] == "stopped" and len(detail["trials"]) == 2
    assert {t["state"] for t in detail["trials"]} == {"failed"}
    again = platform.nsml("automl", "stop", study, check=False)
    assert again.returncode == 1 and "is not running (it is stopped)" in again.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def test_the_study_page_shows_trials_charts_and_links(
    platform: Platform, pruned_study: dict[str, Any], browser: Any
) -> None:
    url = platform.server_info()["url"]
    link = (
        platform.nsml("web", "--no-browser").stdout.split("link (one use, valid for 5 minutes): ")[1].strip()
    )
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(link)
    answer = page.goto(f"{url}/automl/{pruned_study['name']}")
    assert answer.status == 200
    rows = page.locator("#trials tbody tr")
    assert rows.count() == len(pruned_study["trials"]) == 5
    page.locator("#trials th[data-key=value]").click()
    values = [
        v for v in page.locator("#trials tbody tr").evaluate_all("rs => rs.map(r => r.dataset.value)") if v
    ]
    assert [float(v) for v in values] == sorted(float(v) for v in values)
    page.locator("#trials th[data-key=state]").click()
    states = page.locator("#trials tbody tr").evaluate_all("rs => rs.map(r => r.dataset.state)")
    assert states == sorted(states)
    assert page.locator("#parallel polyline.trial-line").count() == 4  # the completed trials
    assert page.locator("#history").is_visible()
    assert page.locator("#importances, #no-importances").count() == 1
    assert page.locator("#stop-study").is_disabled()  # the study finished
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "automl.png"), full_page=True)
    bad = next(t for t in pruned_study["trials"] if t["state"] == "pruned")
    page.locator(f'#trials a[href="/sessions/{bad["session"]}"]').first.click()
    page.wait_for_url(f"**/sessions/{bad['session']}")
    assert page.locator("#session").get_attribute("data-name") == bad["session"]
