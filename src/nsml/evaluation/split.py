"""The public/private split of a test set, fixed per dataset and reproducible.

Each test line is assigned by a hash of (dataset name, line number), so the split does
not depend on the order submissions arrive in and cannot be learnt from the public score
of any one line.
"""

from __future__ import annotations

import functools
import hashlib


def is_public(dataset: str, index: int, public_fraction: float) -> bool:
    digest = hashlib.sha256(f"{dataset}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < public_fraction


@functools.lru_cache(maxsize=32)
def split_indices(dataset: str, size: int, public_fraction: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    public = tuple(i for i in range(size) if is_public(dataset, i, public_fraction))
    chosen = set(public)
    private = tuple(i for i in range(size) if i not in chosen)
    if size >= 2 and (not public or not private):  # tiny sets: keep both parts non-empty
        public, private = tuple(range(0, size, 2)), tuple(range(1, size, 2))
    return public, private
