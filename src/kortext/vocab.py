"""Token vocabularies: the bridge from tokenized text to the integer ids the models take.

Kept tiny and JSON-serialisable so a checkpoint can carry its vocabulary: a submission
runs in a fresh directory without the training data, so it cannot rebuild it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch

PAD = "<pad>"
UNK = "<unk>"


class Vocab:
    """Maps tokens to ids; id 0 is padding and id 1 stands for every unknown token."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.itos: list[str] = [PAD, UNK, *[t for t in tokens if t not in (PAD, UNK)]]
        self.stoi: dict[str, int] = {token: index for index, token in enumerate(self.itos)}

    @classmethod
    def build(cls, corpus: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Most frequent tokens first; ties by first appearance, so builds are reproducible."""
        counts: Counter[str] = Counter()
        for tokens in corpus:
            counts.update(tokens)
        kept = [token for token, count in counts.most_common(max_size) if count >= min_freq]
        return cls(kept)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], max_length: int | None = None) -> list[int]:
        ids = [self.stoi.get(token, 1) for token in tokens]
        return ids[:max_length] if max_length is not None else ids

    def to_dict(self) -> dict[str, Any]:
        return {"itos": self.itos}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        return cls(data["itos"][2:])


def pad_batch(sequences: Sequence[Sequence[int]], max_length: int | None = None) -> torch.Tensor:
    """Right-pads with 0 to the longest sequence (at least 1 wide, so empty texts still work)."""
    width = max([len(s) for s in sequences] + [1])
    if max_length is not None:
        width = min(width, max_length)
    out = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        ids = list(ids)[:width]
        if ids:
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
