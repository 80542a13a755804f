"""TextCNN (Kim 2014, "Convolutional Neural Networks for Sentence Classification").

The three variants of the paper: ``rand`` (embeddings learnt from scratch), ``static``
(pre-trained embeddings, frozen) and ``non-static`` (pre-trained, fine-tuned). The
participant of 2018 tried this with word2vec features; the pre-trained vectors are passed
in as a tensor, so any gensim KeyedVectors matrix works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from kortext.models._head import squeeze_single

Mode = Literal["rand", "static", "non-static"]


class TextCNN(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 128,
        num_outputs: int = 1,
        kernel_sizes: Sequence[int] = (2, 3, 4, 5),
        num_filters: int = 100,
        dropout: float = 0.5,
        mode: Mode = "rand",
        embeddings: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if mode != "rand" and embeddings is None:
            raise ValueError(f"TextCNN mode {mode!r} needs pre-trained embeddings; pass embeddings=...")
        if embeddings is not None:
            vocab_size, embed_dim = embeddings.shape
        self.num_outputs = num_outputs
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if embeddings is not None:
            self.embedding.weight.data.copy_(embeddings)
        self.embedding.weight.requires_grad = mode != "static"
        self.kernel_sizes = tuple(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, k) for k in self.kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = num_filters * len(self.kernel_sizes)
        self.head = nn.Linear(self.output_dim, num_outputs)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """Max-over-time pooled convolution features, one vector per text."""
        if ids.shape[1] < max(self.kernel_sizes):  # short batches still fit every kernel
            ids = nn.functional.pad(ids, (0, max(self.kernel_sizes) - ids.shape[1]))
        x = self.embedding(ids).transpose(1, 2)
        mask = (ids != 0).unsqueeze(1)
        pooled = []
        for size, conv in zip(self.kernel_sizes, self.convs, strict=True):
            h = torch.relu(conv(x))
            valid = mask[:, :, size - 1 :]
            h = h.masked_fill(~valid, 0.0)  # relu output is >= 0, so 0 never wins over real windows
            pooled.append(h.max(dim=2).values)
        return torch.cat(pooled, dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return squeeze_single(self.head(self.dropout(self.encode(ids))), self.num_outputs)
