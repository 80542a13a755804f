"""The 2018 on-disk dataset layout, checked before anything is registered.

train/train_data    one example per line
train/train_label   one label per line, same count
test/test_data      optional; stored on the platform, never shown to training
test/test_label     required when test_data is present
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRAIN_FILES = ("train/train_data", "train/train_label")
TEST_FILES = ("test/test_data", "test/test_label")


class LayoutError(ValueError):
    """The folder is not in the 2018 layout; the message names what is missing."""


@dataclass(frozen=True)
class LayoutSummary:
    train_size: int
    test_size: int
    size_bytes: int


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        data = handle.read()
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def check_layout(root: Path) -> LayoutSummary:
    missing = [name for name in TRAIN_FILES if not (root / name).is_file()]
    if missing:
        raise LayoutError(
            f"{root} is not a dataset folder: {', '.join(missing)} missing "
            "(expected train/train_data and train/train_label)"
        )
    train_size = _pair_size(root, *TRAIN_FILES)
    if train_size == 0:
        raise LayoutError(f"{root / TRAIN_FILES[0]} is empty")
    test_size = 0
    present = [name for name in TEST_FILES if (root / name).is_file()]
    if present and len(present) != len(TEST_FILES):
        absent = next(name for name in TEST_FILES if name not in present)
        raise LayoutError(f"{root / absent} missing: a test split needs both test files")
    if present:
        test_size = _pair_size(root, *TEST_FILES)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return LayoutSummary(train_size, test_size, size)


def _pair_size(root: Path, data_name: str, label_name: str) -> int:
    data, labels = _count_lines(root / data_name), _count_lines(root / label_name)
    if data != labels:
        raise LayoutError(f"{data_name} has {data} lines but {label_name} has {labels}; they must match")
    return data
