"""Rows to entities, by field name, in one place.

An entity's fields are read from the row attributes of the same name, so a column added
to both shows up without a mapper to update. Datetimes come back in UTC (SQLite forgets
the zone) and enum-typed fields are rebuilt from their stored value. The few fields that
are not a column of the row are either derived from it (:data:`DERIVED`) or come from a
joined query, which the caller passes by keyword (an owner's name, say).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar, get_type_hints

from nsml.store.entities import Session, Submission, User
from nsml.store.sql.base import utc

Entity = TypeVar("Entity")

# fields computed from the row rather than copied from a column of that name
DERIVED: dict[type, dict[str, Callable[[Any], Any]]] = {
    User: {"disabled": lambda row: row.disabled_at is not None},
    Session: {"args": lambda row: list(row.args or [])},
    Submission: {"score_history": lambda row: list(row.score_history or [])},
}


# per field of an entity: how to derive it (None: copy the column of that name), its enum type
_Plan = tuple[tuple[str, Callable[[Any], Any] | None, type[Enum] | None], ...]
_PLANS: dict[type, _Plan] = {}


def _plan(entity: type) -> _Plan:
    """The entity's plan, worked out from its type hints on first use."""
    if entity in _PLANS:
        return _PLANS[entity]
    hints = get_type_hints(entity)
    derived = DERIVED.get(entity, {})
    plan = []
    for field in dataclasses.fields(entity):
        hint = hints[field.name]
        enum = hint if isinstance(hint, type) and issubclass(hint, Enum) else None
        plan.append((field.name, derived.get(field.name), enum))
    _PLANS[entity] = tuple(plan)
    return _PLANS[entity]


def to_entity(entity: type[Entity], row: Any, **joined: Any) -> Entity:
    """Build ``entity`` from ``row``; ``joined`` gives the fields read from other tables."""
    values: dict[str, Any] = {}
    for name, derive, enum in _plan(entity):
        if name in joined:
            values[name] = joined[name]
            continue
        value = derive(row) if derive is not None else getattr(row, name)
        if isinstance(value, datetime):
            value = utc(value)
        elif enum is not None and value is not None:
            value = enum(value)
        values[name] = value
    return entity(**values)
