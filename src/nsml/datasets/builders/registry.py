"""The builders ``nsml dataset build`` knows, by name."""

from __future__ import annotations

from nsml.datasets.builders import kin, movie, nsmc
from nsml.datasets.builders.base import Builder, BuildError

BUILDERS: dict[str, Builder] = {b.name: b for b in (kin.BUILDER, *movie.BUILDERS, *nsmc.BUILDERS)}


def get_builder(name: str) -> Builder:
    try:
        return BUILDERS[name]
    except KeyError:
        raise BuildError(f"unknown builder {name!r}; known builders: {', '.join(sorted(BUILDERS))}") from None
