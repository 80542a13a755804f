"""``nsmc``: the NSMC binary sentiment recipe, and ``nsmc_ratings``: the published files.

The published corpus (e9t/nsmc ``ratings_train.txt`` / ``ratings_test.txt``) took
ratings 1-4 as negative (0) and 9-10 as positive (1), dropped 5-8, and balanced the two
classes: 150k train, 50k test. ``nsmc`` rebuilds that from the raw reviews with a seed;
a review text is kept once, so no identical review is in both train and test.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from nsml.datasets.builders.base import BuildContext, Builder, BuildError, clean, unreadable, write_split
from nsml.datasets.builders.fetch import download, is_url
from nsml.datasets.builders.reviews import UPSTREAM_ARCHIVE, Review, check_ratings, load_reviews

PER_CLASS = 100_000  # 75k train + 25k test for each label, as published
TEST_SHARE = 4  # one in four of each class is test
PUBLISHED = "https://raw.githubusercontent.com/e9t/nsmc/master/"
PUBLISHED_FILES = ("ratings_train.txt", "ratings_test.txt")
_PUBLISHED_HEADER = ["id", "document", "label"]


def binary_label(rating: int) -> str | None:
    if rating <= 4:
        return "0"
    if rating >= 9:
        return "1"
    return None


def recipe(reviews: list[Review], seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) balanced ``(text, label)`` pairs from 1-10 rated reviews."""
    labels: dict[str, str | None] = {}
    for review in reviews:
        label = binary_label(review.rating)
        if label is None:
            continue
        seen = labels.setdefault(review.text, label)
        if seen != label:
            labels[review.text] = None  # the same words both loved and hated: ambiguous, dropped
    by_class: dict[str, list[str]] = {"0": [], "1": []}
    for text, label in labels.items():
        if label is not None:
            by_class[label].append(text)
    per_class = min(PER_CLASS, len(by_class["0"]), len(by_class["1"]))
    if per_class < TEST_SHARE:
        raise BuildError(f"too few reviews for the recipe: {per_class} per class after dropping ratings 5-8")
    rng = random.Random(seed)
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    test_per_class = per_class // TEST_SHARE
    for label in ("0", "1"):
        texts = by_class[label]
        rng.shuffle(texts)
        test.extend((text, label) for text in texts[:test_per_class])
        train.extend((text, label) for text in texts[test_per_class:per_class])
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def build_recipe(context: BuildContext) -> None:
    reviews = load_reviews(context)
    check_ratings(reviews, context.source)
    train, test = recipe(reviews, context.seed)
    write_split(context.out, "train", train)
    write_split(context.out, "test", test)


def read_published(path: Path) -> list[tuple[str, str]]:
    """``(document, label)`` rows of ratings_*.txt; the few empty documents are skipped."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rows, None)
            if header != _PUBLISHED_HEADER:
                raise BuildError(
                    f"{path}: header {header} is not {_PUBLISHED_HEADER}; is this an NSMC ratings file?"
                )
            pairs = []
            for number, row in enumerate(rows, start=2):
                if len(row) != 3 or row[2] not in ("0", "1"):
                    raise BuildError(f"{path}:{number}: expected id, document and a 0/1 label")
                text = clean(row[1])
                if text:
                    pairs.append((text, row[2]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise unreadable(path, exc) from None
    return pairs


def build_published(context: BuildContext) -> None:
    if is_url(context.source):
        base = context.source if context.source.endswith("/") else context.source + "/"
        files = [download(base + name, context.cache_dir) for name in PUBLISHED_FILES]
    else:
        folder = Path(context.source)
        files = [folder / name for name in PUBLISHED_FILES]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise BuildError(f"{folder}: {', '.join(missing)} missing (expected the e9t/nsmc ratings files)")
    write_split(context.out, "train", read_published(files[0]))
    write_split(context.out, "test", read_published(files[1]))


BUILDERS = (
    Builder(
        name="nsmc",
        metric="accuracy",
        description="NSMC sentiment recipe from raw reviews (CC0): 1 = rating 9-10, 0 = rating 1-4",
        upstream=UPSTREAM_ARCHIVE,
        sources="reviews.tsv.gz, a folder (or folder URL) of e9t/nsmc raw/*.json, a .json or .zip",
        build=build_recipe,
        seeded=True,
    ),
    Builder(
        name="nsmc_ratings",
        metric="accuracy",
        description="NSMC as published (ratings_train/test.txt, CC0): 1 positive, 0 negative",
        upstream=PUBLISHED,
        sources="folder or URL holding ratings_train.txt and ratings_test.txt",
        build=build_published,
    ),
)
