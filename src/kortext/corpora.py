"""Reading the real corpora the missions use (NSMC movie reviews) without loading pandas."""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterator
from pathlib import Path

NSMC_ENV = "KORTEXT_NSMC"
NSMC_RELATIVE = Path("shared") / "data" / "nsmc" / "reviews.tsv.gz"


def find_nsmc(path: str | Path | None = None) -> Path:
    """``path``, else $KORTEXT_NSMC, else ``../shared/data/nsmc/reviews.tsv.gz`` from here or above."""
    candidates = [Path(path)] if path else []
    if not candidates and os.environ.get(NSMC_ENV):
        candidates = [Path(os.environ[NSMC_ENV])]
    if not candidates:
        here = Path.cwd().resolve()
        candidates = [parent / NSMC_RELATIVE for parent in [here, *here.parents]]
        candidates += [Path(__file__).resolve().parents[3] / NSMC_RELATIVE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"NSMC reviews not found (looked at {candidates[0]}); pass --corpus-path or set {NSMC_ENV} "
        "to reviews.tsv.gz (review_id, movie_id, date, rating, review)"
    )


def iter_nsmc(path: str | Path | None = None, limit: int | None = None) -> Iterator[tuple[str, int]]:
    """(review, rating 1..10) pairs in file order."""
    with gzip.open(find_nsmc(path), "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for index, row in enumerate(reader):
            if limit is not None and index >= limit:
                return
            yield row["review"], int(row["rating"])


def nsmc_reviews(path: str | Path | None = None, limit: int | None = None) -> list[str]:
    return [review for review, _ in iter_nsmc(path, limit)]
