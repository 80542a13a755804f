"""kortext.mission: what the mission scripts share, and kortext's boundary with the platform."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kortext.mission import Mission
from kortext.normalize import normalize
from nsml.client.publish import PublishFailed, publish_folder

ROOT = Path(__file__).resolve().parent.parent
SRC = str(ROOT / "src")


def _mission(**overrides: object) -> Mission:
    fields: dict[str, object] = dict(
        doc="A mission.\n\nMore.", script=str(ROOT / "missions" / "x" / "main.py"), sample="kin",
        demo="demo_kin", pair=True, metrics={"binary": "accuracy"}, model="ensemble",
        members="tfidf,siamese", max_length=60,
    )  # fmt: skip
    return Mission(**{**fields, **overrides})  # type: ignore[arg-type]


def test_a_single_task_mission_has_no_task_flag_and_trains_its_task() -> None:
    mission = _mission()
    config = mission.arguments(["--mode", "test", "--pause", "1", "--iteration", "best"])
    assert (config.mode, config.pause, config.iteration, config.model, config.max_length) == (
        "test", 1, "best", "ensemble", 60,
    )  # fmt: skip
    assert not hasattr(config, "task") and mission.task(config) == "binary"
    with pytest.raises(SystemExit):
        mission.arguments(["--task", "binary"])


def test_a_mission_with_several_tasks_offers_them_first_one_by_default() -> None:
    mission = _mission(metrics={"regression": "mse", "binary": "accuracy"}, pair=False, clean=normalize)
    assert mission.task(mission.arguments([])) == "regression"
    assert mission.task(mission.arguments(["--task", "binary"])) == "binary"
    assert mission.cleaned(["최고!!!!!!"]) == [normalize("최고!!!!!!")]
    texts = ["a"]
    assert _mission().cleaned(texts) is texts  # no cleaning: the infer inputs as given


def test_mission_scripts_declare_only_what_differs() -> None:
    for name in ("kin", "movie_review"):
        script = ROOT / "missions" / name / "main.py"
        assert len(script.read_text().splitlines()) < 50
        shown = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": SRC},
        )  # fmt: skip
        assert shown.returncode == 0 and "--ensemble-of" in shown.stdout, shown.stderr
        assert ("--task" in shown.stdout) == (name == "movie_review")


def test_kortext_and_its_commands_that_do_not_publish_never_import_the_platform() -> None:
    probe = (
        "import sys, kortext, kortext.cli, kortext.pipeline\n"
        "from click.testing import CliRunner\n"
        "result = CliRunner().invoke(kortext.cli.main, ['tokenize', '--tokenizer', 'char', '가나'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m == 'nsml' or m.startswith('nsml.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": SRC},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_publishing_refuses_a_bad_name_or_folder_before_reaching_a_server(tmp_path: Path) -> None:
    with pytest.raises(PublishFailed, match="invalid shared resource name"):
        publish_folder("../x", tmp_path, "", False)
    with pytest.raises(PublishFailed, match="is not a folder"):
        publish_folder("emb", tmp_path / "missing", "", False)
    with pytest.raises(PublishFailed, match="holds no files"):
        publish_folder("emb", tmp_path, "", False)
