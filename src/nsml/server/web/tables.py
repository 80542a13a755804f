"""What the sessions' pages lay out as columns: parsed arguments, latest metrics, and
which checkpoints to show first. Pure functions over the API's data, so they are cheap
for a page of hundreds of sessions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nsml.store import Checkpoint

# keys that are counters or clocks, not results: never the one a "best" checkpoint is picked by
_COUNTERS = ("step", "epoch", "iteration", "time", "elapsed", "lr", "learning_rate")


def parse_args(args: Sequence[str]) -> dict[str, str]:
    """``--lr 0.1 --fast --mode=train x`` as ``{lr: 0.1, fast: true, mode: train, arg1: x}``:
    a script's arguments as columns one can sort and compare."""
    parsed: dict[str, str] = {}
    position = 0
    index = 0
    while index < len(args):
        word = args[index]
        if word.startswith("-") and len(word) > 1 and not _is_number(word):
            key, equals, value = word.lstrip("-").partition("=")
            if not equals:
                following = args[index + 1] if index + 1 < len(args) else None
                if following is not None and (not following.startswith("-") or _is_number(following)):
                    value = following
                    index += 1
                else:
                    value = "true"
            parsed[key] = value
        else:
            position += 1
            parsed[f"arg{position}"] = word
        index += 1
    return parsed


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def columns(rows: Iterable[dict[str, Any]], field: str) -> list[str]:
    """Every key that any row has under ``field``, in a stable order."""
    return sorted({key for row in rows for key in row[field]})


def differing(rows: Sequence[dict[str, Any]], field: str) -> list[str]:
    """The keys under ``field`` whose values are not the same in every row."""
    return [key for key in columns(rows, field) if len({str(row[field].get(key)) for row in rows}) > 1]


def best_key(checkpoints: Sequence[Checkpoint], metric: str) -> tuple[str, bool] | None:
    """The summary key a "best" checkpoint is chosen by and whether higher is better:
    the competition's metric when reported, else a validation score, else a loss."""
    keys = {key for c in checkpoints for key, v in (c.summary or {}).items() if isinstance(v, (int, float))}
    keys = {key for key in keys if not any(key.lower().endswith(word) for word in _COUNTERS)}

    def ranked(found: Iterable[str]) -> list[str]:  # validation before training numbers
        return sorted(found, key=lambda key: (not any(w in key for w in ("val", "test")), key))

    for key in ranked(key for key in keys if key.split("/")[-1] == metric):
        return key, True
    for key in ranked(k for k in keys if any(w in k.lower() for w in ("acc", "f1", "score", "auc", "map"))):
        return key, True
    for key in ranked(k for k in keys if any(w in k.lower() for w in ("loss", "error", "rmse", "mae"))):
        return key, False
    return None


def checkpoint_order(
    checkpoints: Sequence[Checkpoint], metric: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The checkpoints as the page lists them: the best and the latest first (marked), then
    the others, newest first; and the key "best" means."""
    chosen = best_key(checkpoints, metric)
    best: Checkpoint | None = None
    if chosen is not None:
        key, higher = chosen
        scored = [c for c in checkpoints if isinstance((c.summary or {}).get(key), (int, float))]
        if scored:
            best = (max if higher else min)(scored, key=lambda c: float((c.summary or {})[key]))
    latest = checkpoints[-1] if checkpoints else None
    first = [c for c in (best, latest) if c is not None]
    if best is not None and best is latest:
        first = [best]  # one row when the best is the latest
    rest = [c for c in reversed(checkpoints) if not any(c is shown for shown in first)]
    rows = [{"checkpoint": c, "best": c is best, "latest": c is latest, "folded": False} for c in first] + [
        {"checkpoint": c, "best": False, "latest": False, "folded": True} for c in rest
    ]
    return rows, chosen[0] if chosen else None
