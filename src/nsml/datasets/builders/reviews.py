"""Reading NSMC raw reviews (1-10 ratings) from any of the forms the corpus comes in.

Sources, local or http(s):
- ``reviews.tsv.gz`` (or ``.tsv``): ``review_id movie_id date rating review`` with a header;
- a folder of upstream per-movie ``*.json`` files (e9t/nsmc ``raw/``); as a URL, a folder
  whose index page links to them (``python -m http.server``, nginx autoindex);
- a ``.json`` file (one movie) or a ``.zip`` holding the ``*.json`` files, such as
  GitHub's archive of e9t/nsmc: raw.githubusercontent.com cannot list a folder, so the
  upstream default downloads the repository archive once and reads ``raw/*.json`` from it.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from nsml.datasets.builders.base import BuildContext, BuildError, clean
from nsml.datasets.builders.fetch import download, file_name, is_url, listed_files, progress_console

UPSTREAM_ARCHIVE = "https://github.com/e9t/nsmc/archive/refs/heads/master.zip"
# reviews.tsv.gz as mirrored from e9t/nsmc raw/ (638,648 reviews of 13,257 movies).
KNOWN_SHA256 = {"reviews.tsv.gz": "4549f6be1d2d559061d7b0031c834e4778e1728b0a41166c01393a0268bcca42"}
TSV_HEADER = ["review_id", "movie_id", "date", "rating", "review"]


@dataclass(frozen=True, slots=True)
class Review:
    review_id: str
    movie_id: str
    rating: int
    text: str  # already cleaned: one line, no tabs


def load_reviews(context: BuildContext) -> list[Review]:
    """Every non-empty review of the source, in source order."""
    source = context.source
    if is_url(source):
        name = file_name(source)
        if source.split("#")[0].endswith("/") or "." not in name:
            paths = [download(url, context.cache_dir) for url in listed_files(source, ".json")]
            return _from_json_files(paths)
        path = download(source, context.cache_dir, KNOWN_SHA256.get(name))
    else:
        path = Path(source)
        if not path.exists():
            raise BuildError(f"{path} does not exist; give reviews.tsv.gz, a folder of *.json or a URL")
    return _from_path(path)


def _from_path(path: Path) -> list[Review]:
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise BuildError(f"{path} holds no *.json files (expected e9t/nsmc raw/<movie_id>.json)")
        return _from_json_files(files)
    if path.name.endswith((".tsv.gz", ".tsv")):
        return _from_tsv(path)
    if path.suffix == ".zip":
        return _from_zip(path)
    if path.suffix == ".json":
        return _from_json_files([path])
    raise BuildError(f"{path}: unknown review file; give reviews.tsv.gz, *.json, a .zip or a folder")


def _from_tsv(path: Path) -> list[Review]:
    try:
        with path.open("rb") as raw, _counter(in_bytes=True) as bar:
            task = bar.add_task(f"reading {path.name}", total=path.stat().st_size)
            handle: IO[str] = (
                io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8", newline="\n")
                if path.name.endswith(".gz")
                else io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            )
            reviews = _parse_tsv(handle, path, lambda: bar.update(task, completed=raw.tell()))
            bar.update(task, completed=raw.tell())
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: cannot read it as UTF-8 TSV ({exc})") from None
    return reviews


def _parse_tsv(handle: IO[str], path: Path, tick: Callable[[], object]) -> list[Review]:
    header = handle.readline().rstrip("\n").split("\t")
    if header != TSV_HEADER:
        raise BuildError(f"{path}: header {header} is not {TSV_HEADER}")
    reviews: list[Review] = []
    for number, line in enumerate(handle, start=2):
        parts = line.rstrip("\n").split("\t", 4)
        if len(parts) != 5 or not parts[3].isdigit():
            raise BuildError(f"{path}:{number}: expected 5 tab-separated fields with an integer rating")
        text = clean(parts[4])
        if text:
            reviews.append(Review(parts[0], parts[1], int(parts[3]), text))
        if number % 20_000 == 0:
            tick()
    return reviews


def _from_json_files(paths: list[Path]) -> list[Review]:
    reviews: list[Review] = []
    with _counter() as bar:
        task = bar.add_task("reading movie files", total=len(paths))
        for path in paths:
            with path.open("rb") as handle:
                reviews.extend(_parse_movie(handle, str(path)))
            bar.advance(task)
    return reviews


def _from_zip(path: Path) -> list[Review]:
    reviews: list[Review] = []
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".json") and "/raw/" in f"/{n}")
        names = names or sorted(n for n in archive.namelist() if n.endswith(".json"))
        if not names:
            raise BuildError(f"{path} holds no *.json movie files")
        with _counter() as bar:
            task = bar.add_task(f"reading {path.name}", total=len(names))
            for name in names:
                with archive.open(name) as handle:
                    reviews.extend(_parse_movie(handle, f"{path}:{name}"))
                bar.advance(task)
    return reviews


def _parse_movie(handle: IO[bytes], where: str) -> Iterator[Review]:
    try:
        items = json.load(io.TextIOWrapper(handle, encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BuildError(f"{where}: not a JSON list of reviews ({exc})") from None
    if not isinstance(items, list):
        raise BuildError(f"{where}: expected a JSON list of reviews")
    for item in items:
        try:
            review = Review(
                str(item["review_id"]), str(item["movie_id"]), int(item["rating"]), clean(item["review"])
            )
        except (KeyError, TypeError, ValueError):
            raise BuildError(f"{where}: a review lacks review_id, movie_id, rating or review text") from None
        if review.text:
            yield review


def check_ratings(reviews: Iterable[Review], where: str) -> None:
    bad = next((r for r in reviews if not 1 <= r.rating <= 10), None)
    if bad is not None:
        raise BuildError(f"{where}: review {bad.review_id} has rating {bad.rating}, outside 1..10")


def _counter(in_bytes: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn() if in_bytes else MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=True,
    )
