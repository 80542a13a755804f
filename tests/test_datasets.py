"""Dataset registry: push in the 2018 layout, list, search, and refuse bad folders."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import Platform

READ_SPLITS = """
    import os, nsml
    print(sorted(os.listdir(nsml.DATASET_PATH)), flush=True)
    print(sum(1 for _ in open(os.path.join(nsml.DATASET_PATH, "train", "train_label"))), flush=True)
"""


def test_push_the_real_2018_kin_sample(platform: Platform, shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "hackathon2018_sample" / "kin"
    created = platform.json(
        "dataset",
        "push",
        "kin_sample",
        str(source),
        "--metric",
        "accuracy",
        "--description",
        "2018 debugging sample",
    )
    assert created["train_size"] == 109 and created["test_size"] == 0
    listed = {d["name"]: d for d in platform.json("dataset", "ls")}
    assert listed["kin_sample"]["description"] == "2018 debugging sample"
    name = platform.run(platform.project("read_kin", READ_SPLITS), "kin_sample")
    platform.wait(name)
    assert platform.nsml("logs", name).stdout.splitlines()[:2] == ["['train']", "109"]


def test_test_split_is_stored_but_never_mounted(platform: Platform, tmp_path: Path) -> None:
    folder = tmp_path / "with_test"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    (folder / "train" / "train_data").write_text("좋아요\n별로\n")
    (folder / "train" / "train_label").write_text("9\n2\n")
    (folder / "test" / "test_data").write_text("최고\n")
    (folder / "test" / "test_label").write_text("10\n")
    result = platform.nsml("dataset", "push", "tiny_movie", str(folder), "--metric", "mse")
    assert "2 train, 1 test" in result.stdout
    name = platform.run(platform.project("read_tiny", READ_SPLITS), "tiny_movie")
    platform.wait(name)
    assert platform.nsml("logs", name).stdout.splitlines()[0] == "['train']"
    stored = platform.home / "datasets" / "tiny_movie" / "test" / "test_label"
    assert stored.read_text() == "10\n"


def test_bad_folders_are_refused_with_the_reason(platform: Platform, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = platform.nsml("dataset", "push", "broken", str(empty), check=False)
    assert result.returncode != 0 and "train/train_data" in result.stderr

    uneven = tmp_path / "uneven"
    (uneven / "train").mkdir(parents=True)
    (uneven / "train" / "train_data").write_text("a\nb\nc\n")
    (uneven / "train" / "train_label").write_text("1\n0\n")
    result = platform.nsml("dataset", "push", "uneven", str(uneven), check=False)
    assert result.returncode != 0 and "3 lines" in result.stderr and "2" in result.stderr

    result = platform.nsml("dataset", "push", "../escape", str(uneven), check=False)
    assert result.returncode != 0 and "invalid dataset name" in result.stderr
    result = platform.nsml("dataset", "push", "x", str(uneven), "--metric", "auc", check=False)
    assert result.returncode != 0 and "auc" in result.stderr
    assert {"broken", "uneven", "x"}.isdisjoint(d["name"] for d in platform.json("dataset", "ls"))


def test_pushing_an_existing_name_keeps_the_original(platform: Platform, tmp_path: Path) -> None:
    folder = tmp_path / "dup"
    shutil.copytree(platform.home / "datasets" / "demo_movie", folder)
    (folder / "train" / "train_data").write_text("x\n")
    (folder / "train" / "train_label").write_text("1\n")
    result = platform.nsml("dataset", "push", "demo_movie", str(folder), "--metric", "mse", check=False)
    assert result.returncode != 0 and "already exists" in result.stderr
    demo = {d["name"]: d for d in platform.json("dataset", "ls")}["demo_movie"]
    assert demo["train_size"] == 140
    assert (platform.home / "datasets" / "demo_movie" / "train" / "train_label").read_text().count(
        "\n"
    ) == 140
