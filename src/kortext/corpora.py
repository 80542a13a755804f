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


KIN_ENV = "KORTEXT_KIN"
KIN_RELATIVE = Path("shared") / "data" / "question_pair"
KIN_SPLITS = ("train.txt", "validation.txt")  # never test.txt: the missions' hidden test split


def find_kin(path: str | Path | None = None) -> Path:
    """The question_pair folder (``train.txt``...): ``path``, $KORTEXT_KIN, or ``../shared/data``."""
    candidates = [Path(path)] if path else []
    if not candidates and os.environ.get(KIN_ENV):
        candidates = [Path(os.environ[KIN_ENV])]
    if not candidates:
        here = Path.cwd().resolve()
        candidates = [parent / KIN_RELATIVE for parent in [here, *here.parents]]
        candidates += [Path(__file__).resolve().parents[3] / KIN_RELATIVE]
    for candidate in candidates:
        if (candidate / KIN_SPLITS[0]).is_file():
            return candidate
    raise FileNotFoundError(
        f"kin question pairs not found (looked at {candidates[0]}); pass --kin-path or set {KIN_ENV} "
        "to the question_pair folder (train.txt: question1, question2, is_duplicate)"
    )


def kin_question_pairs(path: str | Path | None = None) -> list[tuple[str, str]]:
    """The (question1, question2) pairs of the train and validation files, labels dropped."""
    folder = find_kin(path)
    pairs: list[tuple[str, str]] = []
    for split in KIN_SPLITS:
        if not (folder / split).is_file():
            continue
        with open(folder / split, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            pairs += [(row["question1"], row["question2"]) for row in reader]
    return pairs
