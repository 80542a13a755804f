"""``movie_review`` and the phase-sized ``movie_phase1`` / ``movie_phase2``: ratings 1-10, MSE.

Train and test are split **by movie**, as in the 2018 final round, where test reviews came
from movies never seen in training. A movie's side is decided by a seeded hash of its id,
so a build is reproducible from ``--seed`` alone, whatever order the source lists it in.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from nsml.datasets.builders.base import BuildContext, Builder, BuildError, write_split
from nsml.datasets.builders.reviews import UPSTREAM_ARCHIVE, Review, check_ratings, load_reviews

TEST_MOVIE_FRACTION = 0.1


@dataclass(frozen=True)
class Sizes:
    """Review counts a phase aims at; ``None`` takes every movie."""

    train: int | None
    test: int | None


FULL = Sizes(None, None)
PHASE1 = Sizes(10_000, 2_000)
PHASE2 = Sizes(100_000, 10_000)


def movie_rank(seed: int, movie_id: str) -> float:
    """A stable pseudo-random number in [0, 1) per (seed, movie)."""
    digest = hashlib.sha256(f"{seed}:{movie_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_movie(reviews: list[Review], seed: int, sizes: Sizes) -> tuple[list[Review], list[Review]]:
    """(train, test) reviews; no movie appears on both sides."""
    by_movie: dict[str, list[Review]] = defaultdict(list)
    for review in reviews:
        by_movie[review.movie_id].append(review)
    if len(by_movie) < 2:
        raise BuildError(f"a split by movie needs at least two movies; the source has {len(by_movie)}")
    if sizes.train is not None and sizes.test is not None and len(reviews) < sizes.train + sizes.test:
        raise BuildError(
            f"the source has {len(reviews)} reviews, fewer than the {sizes.train} + {sizes.test} "
            "this size samples; build movie_review from it instead"
        )
    order = sorted(by_movie, key=lambda movie: (movie_rank(seed, movie), movie))
    if sizes.train is None or sizes.test is None:
        held_out = sum(1 for movie in order if movie_rank(seed, movie) < TEST_MOVIE_FRACTION)
        cut = min(max(1, held_out), len(order) - 1)
        test_movies, train_movies = order[:cut], order[cut:]
    else:
        test_movies, rest = _fill(order, by_movie, sizes.test)
        train_movies, _ = _fill(rest, by_movie, sizes.train)
    return _flatten(train_movies, by_movie), _flatten(test_movies, by_movie)


def _fill(order: list[str], by_movie: dict[str, list[Review]], target: int) -> tuple[list[str], list[str]]:
    """Movies in ``order`` that fit into ``target`` reviews (skipping ones that overflow), and the rest."""
    chosen: list[str] = []
    rest: list[str] = []
    total = 0
    for movie in order:
        count = len(by_movie[movie])
        if total < target and total + count <= target:
            chosen.append(movie)
            total += count
        else:
            rest.append(movie)
    if not chosen:
        raise BuildError(f"no movie fits into {target} reviews")
    return chosen, rest


def _flatten(movies: list[str], by_movie: dict[str, list[Review]]) -> list[Review]:
    return [review for movie in movies for review in by_movie[movie]]


def _builder(sizes: Sizes) -> Callable[[BuildContext], None]:
    def build(context: BuildContext) -> None:
        reviews = load_reviews(context)
        check_ratings(reviews, context.source)
        train, test = split_by_movie(reviews, context.seed, sizes)
        write_split(context.out, "train", ((r.text, str(r.rating)) for r in train))
        write_split(context.out, "test", ((r.text, str(r.rating)) for r in test))

    return build


_SOURCES = "reviews.tsv.gz, a folder (or folder URL) of e9t/nsmc raw/*.json, a .json or .zip"

BUILDERS = (
    Builder(
        name="movie_review",
        metric="mse",
        description="Naver movie reviews rated 1-10 (NSMC raw, CC0); test movies unseen in train",
        upstream=UPSTREAM_ARCHIVE,
        sources=_SOURCES,
        build=_builder(FULL),
        seeded=True,
    ),
    Builder(
        name="movie_phase1",
        metric="mse",
        description="Movie ratings 1-10, round 1 size (~10k train reviews); test movies unseen",
        upstream=UPSTREAM_ARCHIVE,
        sources=_SOURCES,
        build=_builder(PHASE1),
        seeded=True,
    ),
    Builder(
        name="movie_phase2",
        metric="mse",
        description="Movie ratings 1-10, round 2 size (~100k train reviews); test movies unseen",
        upstream=UPSTREAM_ARCHIVE,
        sources=_SOURCES,
        build=_builder(PHASE2),
        seeded=True,
    ),
)
