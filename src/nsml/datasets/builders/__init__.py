"""Builders of the real datasets: upstream corpus in, 2018 layout folder out."""

from nsml.datasets.builders.base import DEFAULT_SEED, BuildContext, Builder, BuildError
from nsml.datasets.builders.registry import BUILDERS, get_builder

__all__ = ["BUILDERS", "DEFAULT_SEED", "BuildContext", "BuildError", "Builder", "get_builder"]
