"""The 2018 hackathon baseline: a character-level MLP.

The organisers' baseline embedded each character index (a 251-symbol Hangul jamo/ASCII
alphabet), flattened the fixed-length sequence and ran it through stacked linear layers.
The participant's write-up found that initialisers and dropout made the difference, so
both are part of the model here (Xavier init, dropout between layers). As in the
original, id 0 is both padding and the letter ㄱ, so no padding index by default.
"""

from __future__ import annotations

import torch
from torch import nn

from kortext.models._head import squeeze_single


class CharMLP(nn.Module):
    def __init__(
        self,
        vocab_size: int = 251,
        max_length: int = 200,
        embed_dim: int = 8,
        hidden: int = 256,
        layers: int = 6,
        dropout: float = 0.3,
        num_outputs: int = 1,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__()
        self.max_length = max_length
        self.num_outputs = num_outputs
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        blocks: list[nn.Module] = []
        width = max_length * embed_dim
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*blocks)
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # fixed width: the flattened layer needs exactly max_length positions
        ids = ids[:, : self.max_length]
        if ids.shape[1] < self.max_length:
            ids = nn.functional.pad(ids, (0, self.max_length - ids.shape[1]))
        return squeeze_single(self.net(self.embedding(ids).flatten(1)), self.num_outputs)
