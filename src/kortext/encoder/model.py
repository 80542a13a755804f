"""A small BERT-style transformer encoder over token ids, its masked-LM head, and the
classifier a mission fine-tunes.

Inputs are ``[CLS] text`` or, for a pair, ``[CLS] first [SEP] second`` with segment ids 0/1:
one sequence, so every layer lets the two questions attend to each other (a cross-encoder),
which is what pretrained encoders do best at pair tasks. The classifier joins the two padded
id tensors itself, so the shared training loop (and its swapped-pair augmentation) sees the
same two tensors it gives every other pair model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from kortext.models._head import squeeze_single

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 1, 2, 3, 4
SPECIALS = ("<cls>", "<sep>", "<mask>")  # ids 2..4, after the vocabulary's <pad> and <unk>


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int
    dim: int = 256
    layers: int = 4
    heads: int = 4
    ff: int = 1024
    max_positions: int = 320  # a kin pair: 2 x 60 characters + 2; a review: 140 + 1
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class TransformerEncoder(nn.Module):
    """Token + position + segment embeddings into a pre-norm ``nn.TransformerEncoder``."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.output_dim = config.dim
        self.tokens = nn.Embedding(config.vocab_size, config.dim, padding_idx=PAD_ID)
        self.positions = nn.Embedding(config.max_positions, config.dim)
        self.segments = nn.Embedding(2, config.dim)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.dim, config.heads, config.ff, config.dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )  # fmt: skip
        self.layers = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)
        for embedding in (self.tokens, self.positions, self.segments):
            nn.init.normal_(embedding.weight, std=0.02)
        with torch.no_grad():
            self.tokens.weight[PAD_ID].zero_()

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``(batch, length, dim)``; padding (id 0) is masked out of attention."""
        ids = ids[:, : self.config.max_positions]
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids) + self.positions(positions)[None]
        if segments is not None:
            x = x + self.segments(segments[:, : ids.shape[1]])
        hidden = self.layers(self.dropout(x), src_key_padding_mask=ids == PAD_ID)
        return self.norm(hidden)


class MaskedLMHead(nn.Module):
    """Dense + GELU + LayerNorm, then logits over the vocabulary with the input embeddings' weights."""

    def __init__(self, encoder: TransformerEncoder) -> None:
        super().__init__()
        dim = encoder.config.dim
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.embeddings = encoder.tokens
        self.bias = nn.Parameter(torch.zeros(encoder.config.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.transform(hidden) @ self.embeddings.weight.T + self.bias


class MaskedLanguageModel(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.encoder = TransformerEncoder(config)
        self.head = MaskedLMHead(self.encoder)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(ids, segments))


def with_cls(ids: torch.Tensor) -> torch.Tensor:
    """``[CLS] text`` from right-padded ids."""
    return torch.cat([torch.full_like(ids[:, :1], CLS_ID), ids], dim=1)


def join_pair(first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] first [SEP] second`` and its segment ids, from two right-padded id tensors,
    with no padding in between (so positions mean the same as in pretraining)."""
    n_first = (first != PAD_ID).sum(1, keepdim=True)
    n_second = (second != PAD_ID).sum(1, keepdim=True)
    width = int((n_first + n_second).max()) + 2
    j = torch.arange(width, device=first.device)[None].expand(len(first), -1)
    from_first = first.gather(1, (j - 1).clamp(0, max(first.shape[1] - 1, 0)))
    from_second = second.gather(1, (j - n_first - 2).clamp(0, max(second.shape[1] - 1, 0)))
    ids = torch.where(j <= n_first, from_first, from_second)
    ids = torch.where(j == n_first + 1, torch.full_like(ids, SEP_ID), ids)
    ids = torch.where(j >= n_first + n_second + 2, torch.full_like(ids, PAD_ID), ids)
    ids[:, 0] = CLS_ID
    return ids, (j > n_first + 1).long()


class EncoderClassifier(nn.Module):
    """The encoder with one output (a logit, or a standardised rating) read off ``[CLS]``."""

    def __init__(self, config: EncoderConfig, num_outputs: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = TransformerEncoder(config)
        self.num_outputs = num_outputs
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(config.dim, config.dim), nn.Tanh(),
            nn.Dropout(dropout), nn.Linear(config.dim, num_outputs),
        )  # fmt: skip

    def forward(self, ids: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
        if second is None:
            hidden = self.encoder(with_cls(ids))
        else:
            hidden = self.encoder(*join_pair(ids, second))
        return squeeze_single(self.head(hidden[:, 0]), self.num_outputs)
