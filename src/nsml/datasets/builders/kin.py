"""``kin``: Korean question pairs (songys/Question_pair) in the 2018 Kin layout.

Upstream labels ``is_duplicate = 0`` for the *same* question; the 2018 mission scores
1 = similar, so the label is flipped. Train is upstream train + validation and test is
upstream test, so accuracies compare with the published table on that split; the few
train pairs that upstream repeats in test (either order) are left out of train, so no
test example is ever trained on.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nsml.datasets.builders.base import BuildContext, Builder, BuildError, clean, unreadable, write_split
from nsml.datasets.builders.fetch import download, is_url

UPSTREAM = "https://raw.githubusercontent.com/songys/Question_pair/master/"
PARTS = ("train.txt", "validation.txt", "test.txt")
# The published files (MIT); a mirror must serve these exact bytes.
SHA256 = {
    "train.txt": "addf4c88b19066ad55a09f466c5c3f6428b3f2bd5d55100d3ca5b93d9d8daff9",
    "validation.txt": "3928c783f561f36547fd8e0c9d78a6e1d6013db3debcf559c4135aa5536badea",
    "test.txt": "0d5738107ea3742de4dcaf3a358b6bfa4818781bc6aec11a9956a3fbe35f8b61",
}
_HEADER = ["question1", "question2", "is_duplicate"]


def _files(context: BuildContext) -> dict[str, Path]:
    if is_url(context.source):
        base = context.source if context.source.endswith("/") else context.source + "/"
        return {part: download(base + part, context.cache_dir, SHA256[part]) for part in PARTS}
    folder = Path(context.source)
    missing = [part for part in PARTS if not (folder / part).is_file()]
    if missing:
        raise BuildError(
            f"{folder} is not a Question_pair folder: {', '.join(missing)} missing "
            "(expected train.txt, validation.txt and test.txt)"
        )
    return {part: folder / part for part in PARTS}


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """(``question1<TAB>question2``, label with 1 = similar) for each row of an upstream file."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rows, None)
            if header != _HEADER:
                raise BuildError(f"{path}: header {header} is not {_HEADER}; is this a Question_pair file?")
            pairs = []
            for number, row in enumerate(rows, start=2):
                if len(row) != 3 or row[2] not in ("0", "1"):
                    raise BuildError(f"{path}:{number}: expected question1, question2 and a 0/1 label")
                similar = "1" if row[2] == "0" else "0"
                pairs.append((f"{clean(row[0])}\t{clean(row[1])}", similar))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise unreadable(path, exc) from None
    return pairs


def build(context: BuildContext) -> None:
    files = _files(context)
    test = read_pairs(files["test.txt"])
    in_test = {_unordered(pair) for pair, _ in test}
    train = read_pairs(files["train.txt"]) + read_pairs(files["validation.txt"])
    write_split(context.out, "train", [row for row in train if _unordered(row[0]) not in in_test])
    write_split(context.out, "test", test)


def _unordered(pair: str) -> frozenset[str]:
    return frozenset(pair.split("\t"))


BUILDER = Builder(
    name="kin",
    metric="accuracy",
    description="Korean question pairs (songys/Question_pair, MIT): 1 = same question",
    upstream=UPSTREAM,
    sources="folder or URL holding train.txt, validation.txt, test.txt",
    build=build,
)
