"""Bidirectional GRU/LSTM encoders with attention pooling (the models planned in 2018).

Attention pooling learns which positions matter instead of keeping only the last state,
which matters for reviews where the verdict sits anywhere in the text.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from kortext.models._head import squeeze_single

Cell = Literal["gru", "lstm"]


class AttentionPooling(nn.Module):
    """Weighted average of the positions, weights from a small scoring MLP, padding masked."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(states).squeeze(-1).masked_fill(~mask, -1e9)
        weights = torch.softmax(scores, dim=1)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1)


class RNNEncoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 128,
        hidden: int = 128,
        cell: Cell = "gru",
        layers: int = 1,
        dropout: float = 0.2,
        embeddings: torch.Tensor | None = None,
        freeze_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if embeddings is not None:
            vocab_size, embed_dim = embeddings.shape
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if embeddings is not None:
            self.embedding.weight.data.copy_(embeddings)
            self.embedding.weight.requires_grad = not freeze_embeddings
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_class(
            embed_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.pool = AttentionPooling(2 * hidden)
        self.output_dim = 2 * hidden

    def states(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position states (packed, so padding never leaks into the backward direction)."""
        mask = ids != 0
        lengths = mask.sum(1).clamp(min=1)
        embedded = self.dropout(self.embedding(ids))
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        mask = mask.clone()
        mask[:, 0] = True  # an empty text still has one (zero) position to pool
        return states, mask

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        states, mask = self.states(ids)
        return self.pool(states, mask)


class RNNClassifier(nn.Module):
    def __init__(
        self, vocab_size: int, num_outputs: int = 1, dropout: float = 0.2, **encoder: object
    ) -> None:
        super().__init__()
        self.num_outputs = num_outputs
        self.encoder = RNNEncoder(vocab_size, dropout=dropout, **encoder)  # type: ignore[arg-type]
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_dim, num_outputs)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode(ids)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return squeeze_single(self.head(self.dropout(self.encode(ids))), self.num_outputs)
