"""ESIM-style cross attention for pairs (Chen et al. 2017, "Enhanced LSTM for NLI").

Unlike the siamese model, each question reads the other: every position is soft-aligned
with the other question, so "what changed" between two near-identical questions (a
negation, a different object) is visible to the model position by position.
"""

from __future__ import annotations

import torch
from torch import nn

from kortext.models._head import squeeze_single


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)


def _pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).float()
    mean = (states * m).sum(1) / m.sum(1).clamp(min=1.0)
    top = states.masked_fill(~mask.unsqueeze(-1), -1e9).max(1).values
    return torch.cat([mean, top], dim=-1)


class ESIM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 128,
        hidden: int = 128,
        num_outputs: int = 1,
        dropout: float = 0.2,
        extra_features: int = 0,
        embeddings: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if embeddings is not None:
            vocab_size, embed_dim = embeddings.shape
        self.num_outputs = num_outputs
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if embeddings is not None:
            self.embedding.weight.data.copy_(embeddings)
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.project = nn.Sequential(nn.Linear(8 * hidden, hidden), nn.ReLU())
        self.composer = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(8 * hidden + extra_features, hidden),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_outputs),
        )

    def _run(self, lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return states

    def forward(self, first: torch.Tensor, second: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        mask_a, mask_b = first != 0, second != 0
        mask_a[:, 0] = True  # empty questions keep one position
        mask_b[:, 0] = True
        a = self._run(self.encoder, self.dropout(self.embedding(first)), mask_a)
        b = self._run(self.encoder, self.dropout(self.embedding(second)), mask_b)
        scores = torch.bmm(a, b.transpose(1, 2))
        a_aligned = torch.bmm(_masked_softmax(scores, mask_b.unsqueeze(1)), b)
        b_aligned = torch.bmm(_masked_softmax(scores.transpose(1, 2), mask_a.unsqueeze(1)), a)
        m_a = self.project(torch.cat([a, a_aligned, a - a_aligned, a * a_aligned], dim=-1))
        m_b = self.project(torch.cat([b, b_aligned, b - b_aligned, b * b_aligned], dim=-1))
        v_a = self._run(self.composer, self.dropout(m_a), mask_a)
        v_b = self._run(self.composer, self.dropout(m_b), mask_b)
        features = torch.cat([_pool(v_a, mask_a), _pool(v_b, mask_b), *extra], dim=-1)
        return squeeze_single(self.head(features), self.num_outputs)
