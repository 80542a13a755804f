"""A dataset's versions on disk: a phase's hidden test set belongs to the competition and
survives ``push --replace`` (and its undo), the data files are per version."""

from __future__ import annotations

from pathlib import Path

from nsml.artifacts import dataset_versions


def _staged(root: Path, label: str, with_phase_folder: bool = False) -> Path:
    staged = root / f"staged-{label}"
    (staged / "train").mkdir(parents=True)
    (staged / "train" / "train_data").write_text(label + "\n")
    if with_phase_folder:  # an uploaded folder that happens to bear the name
        (staged / "phases" / "final" / "test").mkdir(parents=True)
        (staged / "phases" / "final" / "test" / "test_label").write_text("uploaded\n")
    return staged


def test_a_phase_test_set_moves_to_each_new_version_and_back_on_undo(tmp_path: Path) -> None:
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    dataset_versions.install(datasets, _staged(tmp_path, "one"), "cup", 1)
    hidden = datasets / "cup" / "phases" / "final" / "test"
    hidden.mkdir(parents=True)
    (hidden / "test_label").write_text("1\n0\n")

    dataset_versions.install(datasets, _staged(tmp_path, "two", with_phase_folder=True), "cup", 2)
    assert (datasets / "cup" / "train" / "train_data").read_text() == "two\n"
    assert (datasets / "cup" / "phases" / "final" / "test" / "test_label").read_text() == "1\n0\n"
    assert not (dataset_versions.version_dir(datasets, "cup", 1) / "phases").exists()

    dataset_versions.restore(datasets, "cup", 1)  # the record of version 2 could not be written
    assert (datasets / "cup" / "train" / "train_data").read_text() == "one\n"
    assert (datasets / "cup" / "phases" / "final" / "test" / "test_label").read_text() == "1\n0\n"

    dataset_versions.install(datasets, _staged(tmp_path, "three"), "cup", 2)
    dataset_versions.prune(datasets, "cup")
    assert (datasets / "cup" / "phases" / "final" / "test" / "test_label").read_text() == "1\n0\n"
