"""The output layer every classifier shares: one value per row, or one row of logits."""

from __future__ import annotations

import torch


def squeeze_single(logits: torch.Tensor, num_outputs: int) -> torch.Tensor:
    return logits.squeeze(-1) if num_outputs == 1 else logits
