"""A siamese pair classifier: one shared encoder, features ``[u, v, |u-v|, u*v]``.

The shared encoder makes the model symmetric in what it learns about each question, and
the four-way features (InferSent, Conneau et al. 2017) let a small MLP compare them.
Optional extra dense features (hand-made similarities) join before the MLP.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from kortext.models._head import squeeze_single


class Encoder(Protocol):
    output_dim: int

    def encode(self, ids: torch.Tensor) -> torch.Tensor: ...


class SiameseClassifier(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        num_outputs: int = 1,
        hidden: int = 256,
        dropout: float = 0.2,
        extra_features: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.num_outputs = num_outputs
        dim = int(encoder.output_dim)  # type: ignore[arg-type]
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(4 * dim + extra_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_outputs),
        )

    def forward(self, first: torch.Tensor, second: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        u = self.encoder.encode(first)  # type: ignore[operator]
        v = self.encoder.encode(second)  # type: ignore[operator]
        features = torch.cat([u, v, (u - v).abs(), u * v, *extra], dim=1)
        return squeeze_single(self.mlp(features), self.num_outputs)
