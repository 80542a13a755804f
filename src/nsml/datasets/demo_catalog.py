"""The demo datasets registered when a new ``NSML_HOME`` is initialised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEMO_ROOT = Path(__file__).parent / "demo"


@dataclass(frozen=True)
class DemoDataset:
    name: str
    metric: str
    description: str

    @property
    def path(self) -> Path:
        return DEMO_ROOT / self.name


DEMO_DATASETS = (
    DemoDataset("demo_kin", "accuracy", "Korean question pairs, 1 = same question (demo)"),
    DemoDataset("demo_movie", "mse", "Korean movie reviews rated 1-10 (demo)"),
)
