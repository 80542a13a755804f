"""Dataset builders on the real corpora in ../shared/data: counts, labels, splits, downloads."""

from __future__ import annotations

import csv
import gzip
import http.server
import json
import shutil
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from conftest import Platform, require_shared_data
from nsml.datasets.builders import BuildContext, BuildError, get_builder
from nsml.datasets.builders.base import clean
from nsml.datasets.builders.movie import PHASE1, PHASE2, split_by_movie
from nsml.datasets.builders.nsmc import recipe
from nsml.datasets.builders.reviews import Review, load_reviews

REVIEWS_IN_MIRROR = 638_648
EMPTY_REVIEWS = 19  # blank after cleaning; never written
MOVIES_IN_MIRROR = 13_257


def build(tmp_path: Path, name: str, source: str | Path, seed: int = 2018) -> Path:
    out = tmp_path / name
    get_builder(name).run(BuildContext(str(source), out, tmp_path / "cache", seed))
    return out


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def split_lines(folder: Path, split: str) -> tuple[list[str], list[str]]:
    return lines(folder / split / f"{split}_data"), lines(folder / split / f"{split}_label")


@pytest.fixture(scope="module")
def mirror() -> Path:
    return require_shared_data()


@pytest.fixture(scope="module")
def reviews(mirror: Path) -> list[Review]:
    context = BuildContext(str(mirror / "nsmc" / "reviews.tsv.gz"), Path("unused"), Path("unused"))
    return load_reviews(context)


# --- kin ---------------------------------------------------------------------------------


def test_kin_is_train_plus_validation_and_flips_the_label(mirror: Path, tmp_path: Path) -> None:
    out = build(tmp_path, "kin", mirror / "question_pair")
    train, train_labels = split_lines(out, "train")
    test, test_labels = split_lines(out, "test")
    # upstream repeats three train pairs in test (e.g. "집 가는 중" / "집에 간다"): left out of train
    assert (len(train), len(test)) == (6_136 + 682 - 3, 758)
    assert all(line.count("\t") == 1 for line in train + test)
    unordered = {frozenset(line.split("\t")) for line in train}
    assert not [line for line in test if frozenset(line.split("\t")) in unordered]
    assert set(train_labels) | set(test_labels) == {"0", "1"}
    upstream_same = 0
    for part in ("train.txt", "validation.txt"):
        with (mirror / "question_pair" / part).open(encoding="utf-8") as handle:
            upstream_same += sum(row["is_duplicate"] == "0" for row in csv.DictReader(handle, delimiter="\t"))
    assert train_labels.count("1") == upstream_same - 3  # the three repeats were all "same"
    # Identical questions are the same question: 1 in the 2018 convention (upstream has one
    # identical pair marked different, "밀당은 어떻게 해?", kept as published).
    identical = [
        label for pair, label in zip(train, train_labels, strict=True) if len(set(pair.split("\t"))) == 1
    ]
    assert Counter(identical) == {"1": 837, "0": 1}
    assert (train[0], train_labels[0]) == (
        "여자친구가 데이트 시간을 너무 안 지켜.\t여자친구가 데이트 시간을 너무 안 지켜.",
        "1",
    )


def test_kin_refuses_a_folder_without_the_upstream_files(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="validation.txt"):
        build(tmp_path, "kin", tmp_path)


# --- movie_review ------------------------------------------------------------------------


def test_reading_all_raw_reviews(reviews: list[Review]) -> None:
    assert len(reviews) == REVIEWS_IN_MIRROR - EMPTY_REVIEWS
    assert len({r.movie_id for r in reviews}) == MOVIES_IN_MIRROR
    assert {r.rating for r in reviews} == set(range(1, 11))
    assert not any("\t" in r.text or "\n" in r.text or not r.text for r in reviews)


def test_movie_split_holds_out_a_tenth_of_the_movies_reproducibly(reviews: list[Review]) -> None:
    from nsml.datasets.builders.movie import FULL

    train, test = split_by_movie(reviews, 2018, FULL)
    train_movies, test_movies = {r.movie_id for r in train}, {r.movie_id for r in test}
    assert train_movies.isdisjoint(test_movies)
    assert len(train) + len(test) == len(reviews)
    assert 0.09 < len(test_movies) / MOVIES_IN_MIRROR < 0.11
    again_train, again_test = split_by_movie(list(reversed(reviews)), 2018, FULL)
    assert {r.movie_id for r in again_test} == test_movies  # order of the source does not matter
    _, other_test = split_by_movie(reviews, 7, FULL)
    assert {r.movie_id for r in other_test} != test_movies


@pytest.mark.parametrize(("sizes", "low"), [(PHASE1, 0.99), (PHASE2, 0.99)])
def test_phase_sizes_are_sampled_by_movie(reviews: list[Review], sizes: object, low: float) -> None:
    from nsml.datasets.builders.movie import Sizes

    assert isinstance(sizes, Sizes) and sizes.train and sizes.test
    train, test = split_by_movie(reviews, 2018, sizes)
    assert low * sizes.train <= len(train) <= sizes.train
    assert low * sizes.test <= len(test) <= sizes.test
    assert {r.movie_id for r in train}.isdisjoint(r.movie_id for r in test)


def test_movie_review_full_build(mirror: Path, tmp_path: Path) -> None:
    out = build(tmp_path, "movie_review", mirror / "nsmc" / "reviews.tsv.gz")
    train, train_labels = split_lines(out, "train")
    test, test_labels = split_lines(out, "test")
    assert len(train) + len(test) == REVIEWS_IN_MIRROR - EMPTY_REVIEWS
    assert (len(train), len(test)) == (575_731, 62_898)
    assert set(train_labels) == set(test_labels) == {str(r) for r in range(1, 11)}
    assert len(train) == len("\n".join(train).splitlines())  # no review breaks a line


def test_upstream_json_layout_matches_the_tsv(mirror: Path, reviews: list[Review], tmp_path: Path) -> None:
    raw = mirror / "nsmc" / "raw-sample"
    from_json = load_reviews(BuildContext(str(raw), tmp_path, tmp_path))
    movies = {path.stem for path in raw.glob("*.json")}
    assert len(movies) == 20 and {r.movie_id for r in from_json} == movies
    assert sorted(from_json, key=lambda r: r.review_id) == sorted(
        (r for r in reviews if r.movie_id in movies), key=lambda r: r.review_id
    )
    out = build(tmp_path, "movie_review", raw)
    train, _ = split_lines(out, "train")
    test, _ = split_lines(out, "test")
    assert len(train) + len(test) == len(from_json) and test
    by_text = {r.text: r.movie_id for r in from_json}
    assert {by_text[t] for t in train}.isdisjoint(by_text[t] for t in test)


def test_a_phase_needs_enough_reviews(mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="the source has 1201 reviews, fewer than the 10000 \\+ 2000"):
        build(tmp_path, "movie_phase1", mirror / "nsmc" / "raw-sample")


def test_line_breaks_inside_reviews_never_split_a_line(mirror: Path, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    shutil.copytree(mirror / "nsmc" / "raw-sample", folder)
    movie = sorted(folder.glob("*.json"))[0]
    items = json.loads(movie.read_text(encoding="utf-8"))
    items[0]["review"] = "첫 줄\n둘째\t줄\u2028셋째 줄"
    items[1]["review"] = " \n "
    movie.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    out = build(tmp_path, "movie_review", folder)
    data = (out / "train" / "train_data").read_text(encoding="utf-8") + (
        out / "test" / "test_data"
    ).read_text(encoding="utf-8")
    assert "첫 줄 둘째 줄 셋째 줄" in data.splitlines()
    assert len(data.splitlines()) == data.count("\n") == 1_201 - 1
    assert clean("\r\n a\x0bb\x85 ") == "a b"


# --- nsmc ----------------------------------------------------------------------------------


def test_nsmc_recipe_reproduces_the_published_sizes(reviews: list[Review]) -> None:
    train, test = recipe(reviews, 2018)
    assert (len(train), len(test)) == (150_000, 50_000)
    assert Counter(label for _, label in train) == {"0": 75_000, "1": 75_000}
    assert Counter(label for _, label in test) == {"0": 25_000, "1": 25_000}
    train_texts = [text for text, _ in train]
    assert len(set(train_texts)) == len(train_texts)
    assert set(train_texts).isdisjoint(text for text, _ in test)
    ratings: dict[str, set[int]] = {}
    for review in reviews:
        ratings.setdefault(review.text, set()).add(review.rating)
    for text, label in train[:5_000] + test[:5_000]:
        allowed = {1, 2, 3, 4} if label == "0" else {9, 10}
        assert ratings[text] & allowed and not ratings[text] & ({1, 2, 3, 4, 9, 10} - allowed)
    assert recipe(reviews, 2018) == (train, test)


def test_nsmc_ratings_reads_the_published_file_layout(reviews: list[Review], tmp_path: Path) -> None:
    folder = tmp_path / "published"
    folder.mkdir()
    sample = [r for r in reviews[:3_000] if r.rating <= 4 or r.rating >= 9]
    for name, part in (("ratings_train.txt", sample[:2_000]), ("ratings_test.txt", sample[2_000:])):
        rows = ["id\tdocument\tlabel"] + [f"{r.review_id}\t{r.text}\t{int(r.rating >= 9)}" for r in part]
        rows.append("9999999\t\t0")  # the published files hold a few empty documents
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = build(tmp_path, "nsmc_ratings", folder)
    train, train_labels = split_lines(out, "train")
    test, _ = split_lines(out, "test")
    assert (len(train), len(test)) == (2_000, len(sample) - 2_000)
    assert train[0] == sample[0].text and train_labels[0] == str(int(sample[0].rating >= 9))
    with pytest.raises(BuildError, match="ratings_test.txt missing"):
        (folder / "ratings_test.txt").unlink()
        build(tmp_path, "nsmc_ratings", folder)


def test_unknown_builder_names_the_known_ones() -> None:
    with pytest.raises(BuildError, match="unknown builder 'imdb'; known builders: kin, movie_phase1"):
        get_builder("imdb")


# --- downloads -----------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        _Handler.requests.append(self.path)


@pytest.fixture(scope="module")
def http_mirror(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The mirror served on 127.0.0.1, plus ``tampered/``: a Question_pair copy with one changed row."""
    root = tmp_path_factory.mktemp("http")
    (root / "question_pair").symlink_to(mirror / "question_pair")
    (root / "raw-sample").symlink_to(mirror / "nsmc" / "raw-sample")
    # The shape of GitHub's archive of e9t/nsmc, the raw builders' upstream default.
    with zipfile.ZipFile(root / "master.zip", "w") as archive:
        archive.writestr("nsmc-master/README.md", "not a movie")
        for movie in sorted((mirror / "nsmc" / "raw-sample").glob("*.json")):
            archive.write(movie, f"nsmc-master/raw/{movie.name}")
    shutil.copytree(mirror / "question_pair", root / "tampered")
    (root / "tampered" / "train.txt").chmod(0o644)
    with (root / "tampered" / "train.txt").open("a", encoding="utf-8") as handle:
        handle.write("재즈란 뭔가요?\t재즈란 무엇인가요?\t1\n")
    with gzip.open(root / "tampered" / "reviews.tsv.gz", "wt", encoding="utf-8") as handle:
        handle.write("review_id\tmovie_id\tdate\trating\treview\n1\t10001\t15.08.25\t10\t최고\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_kin_download_is_checked_and_cached(http_mirror: str, mirror: Path, tmp_path: Path) -> None:
    _Handler.requests.clear()
    downloaded = build(tmp_path, "kin", f"{http_mirror}/question_pair/")
    local = build(tmp_path / "local", "kin", mirror / "question_pair")
    for name in ("train/train_data", "train/train_label", "test/test_data", "test/test_label"):
        assert (downloaded / name).read_bytes() == (local / name).read_bytes()
    assert len(_Handler.requests) == 3
    shutil.rmtree(downloaded)
    build(tmp_path, "kin", f"{http_mirror}/question_pair")
    assert len(_Handler.requests) == 3  # verified copies in the cache are reused


@pytest.mark.parametrize("path", ["raw-sample/", "master.zip"])
def test_movie_json_files_from_a_folder_url_or_an_archive(
    http_mirror: str, mirror: Path, tmp_path: Path, path: str
) -> None:
    remote = build(tmp_path, "movie_review", f"{http_mirror}/{path}")
    local = build(tmp_path / "local", "movie_review", mirror / "nsmc" / "raw-sample")
    for name in ("train/train_data", "train/train_label", "test/test_data", "test/test_label"):
        assert (remote / name).read_bytes() == (local / name).read_bytes()


def test_a_wrong_checksum_is_an_error_and_nothing_is_kept(http_mirror: str, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="checksum mismatch for .*/tampered/train.txt"):
        build(tmp_path, "kin", f"{http_mirror}/tampered/")
    with pytest.raises(BuildError, match="checksum mismatch for .*/tampered/reviews.tsv.gz"):
        build(tmp_path, "nsmc", f"{http_mirror}/tampered/reviews.tsv.gz")
    url = f"{http_mirror}/raw-sample/115703.json#sha256={'0' * 64}"
    with pytest.raises(BuildError, match="checksum mismatch"):
        build(tmp_path, "movie_review", url)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    with pytest.raises(BuildError, match="HTTP 404"):
        build(tmp_path, "kin", f"{http_mirror}/nowhere/")


# --- the CLI against a running platform ------------------------------------------------------


def test_cli_builds_kin_into_the_platform(platform: Platform, mirror: Path, http_mirror: str) -> None:
    built = platform.json("dataset", "build", "kin", "--source", str(mirror / "question_pair"))
    assert (built["name"], built["train_size"], built["test_size"]) == ("kin", 6_815, 758)
    listed = {d["name"]: d for d in platform.json("dataset", "ls")}
    assert listed["kin"]["metric"] == "accuracy" and "1 = same question" in listed["kin"]["description"]
    assert (platform.home / "datasets" / "kin" / "test" / "test_label").read_text().count("\n") == 758

    names = [b["name"] for b in platform.json("dataset", "builders")]
    assert names == ["kin", "movie_review", "movie_phase1", "movie_phase2", "nsmc", "nsmc_ratings"]

    result = platform.nsml(
        "dataset", "build", "kin", "--source", f"{http_mirror}/tampered/", "--as", "bad", check=False
    )
    assert result.returncode == 1 and "checksum mismatch" in result.stderr
    result = platform.nsml("dataset", "build", "kin", "--source", str(mirror / "question_pair"), check=False)
    assert (
        result.returncode == 1 and "dataset kin already exists; pick another name with --as" in result.stderr
    )
    result = platform.nsml("dataset", "build", "imdb", check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(
        "Error: unknown builder"
    )
    assert "bad" not in {d["name"] for d in platform.json("dataset", "ls")}
