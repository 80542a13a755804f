"""One training loop for every kortext model: seeds, a validation split, early stopping.

Why one loop: the missions compare models, and a comparison is only fair when every
model is trained, validated and stopped the same way. The loop never talks to the
platform; a ``report`` callback lets a mission forward each epoch's metrics to
``nsml.report`` (kortext does not import nsml).
"""

from __future__ import annotations

import copy
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from kortext.progress import ProgressLines

Task = Literal["binary", "regression", "multiclass"]
ReportFn = Callable[[int, dict[str, float]], None]


@dataclass
class TrainConfig:
    task: Task = "binary"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 3
    valid_fraction: float = 0.1
    seed: int = 1
    max_grad_norm: float = 5.0
    progress: bool = True
    progress_interval_s: float = 10.0  # off a terminal (a session's log): a plain line this often
    max_steps: int | None = None  # caps optimizer steps in total (quick runs, tests)


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_indices(n: int, valid_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded shuffle cut into train and validation (at least one example in each when n > 1)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_valid = min(n - 1, max(1, int(round(n * valid_fraction)))) if valid_fraction > 0 and n > 1 else 0
    return order[n_valid:], order[:n_valid]


def loss_function(task: Task) -> nn.Module:
    if task == "binary":
        return nn.BCEWithLogitsLoss()
    if task == "regression":
        return nn.MSELoss()
    return nn.CrossEntropyLoss()


def score(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Accuracy for classification (higher is better), MSE for regression (lower is better)."""
    if task == "binary":
        return float(((outputs > 0).float() == targets).float().mean())
    if task == "multiclass":
        return float((outputs.argmax(-1) == targets).float().mean())
    return float(((outputs - targets) ** 2).mean())


def _trim(tensor: torch.Tensor) -> torch.Tensor:
    """Drops all-padding columns of an id batch, so a batch of short texts runs fast."""
    if tensor.dtype != torch.long or tensor.dim() != 2 or tensor.shape[1] == 0:
        return tensor
    used = (tensor != 0).any(0).nonzero()
    width = int(used.max()) + 1 if len(used) else 1
    return tensor[:, :width]


def _batch(inputs: Sequence[torch.Tensor], index: torch.Tensor) -> list[torch.Tensor]:
    return [_trim(x[index]) for x in inputs]


def predict(model: nn.Module, inputs: Sequence[torch.Tensor], batch_size: int = 256) -> torch.Tensor:
    """Raw model outputs (logits or values) for all rows, in order, in eval mode."""
    model.eval()
    n = len(inputs[0])
    outputs = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            index = torch.arange(start, min(n, start + batch_size))
            outputs.append(model(*_batch(inputs, index)))
    return torch.cat(outputs) if outputs else torch.empty(0)


def fit(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    targets: torch.Tensor,
    config: TrainConfig,
    report: ReportFn | None = None,
    valid: tuple[Sequence[torch.Tensor], torch.Tensor] | None = None,
) -> TrainResult:
    """Trains ``model`` in place and leaves it holding its best validation weights.

    Without ``valid`` a seeded ``valid_fraction`` of the rows is held out. Training stops
    after ``patience`` epochs without improvement.
    """
    set_seed(config.seed)
    if valid is None:
        train_idx, valid_idx = split_indices(len(targets), config.valid_fraction, config.seed)
        valid_inputs = [x[valid_idx] for x in inputs]
        valid_targets = targets[valid_idx]
        train_inputs = [x[train_idx] for x in inputs]
        train_targets = targets[train_idx]
    else:
        train_inputs, train_targets = list(inputs), targets
        valid_inputs, valid_targets = list(valid[0]), valid[1]
    lower_is_better = config.task == "regression"
    loss_fn = loss_function(config.task)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    best_score = math.inf if lower_is_better else -math.inf
    best_state = copy.deepcopy(model.state_dict())
    result = TrainResult(best_epoch=-1, best_score=best_score)
    started = time.perf_counter()
    steps = 0
    stale = 0
    n = len(train_targets)
    # a bar redraws one line with \r, which a log file (`nsml logs -f`) shows as nothing
    # for minutes; off a terminal the progress goes out as plain lines instead
    bar_shown = config.progress and sys.stderr.isatty()
    lines = ProgressLines(config.progress_interval_s) if config.progress and not bar_shown else None
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        seen = 0
        batches = order.split(config.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not bar_shown, unit="batch")
        for done, index in enumerate(bar, start=1):
            optimizer.zero_grad()
            loss = loss_fn(model(*_batch(train_inputs, index)), train_targets[index])
            loss.backward()
            if config.max_grad_norm:
                nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            total += loss.item() * len(index)
            seen += len(index)
            steps += 1
            bar.set_postfix(loss=f"{total / seen:.4f}")
            if lines is not None and lines.due():
                lines.say(f"epoch {epoch} {done}/{len(batches)} batches, loss {total / seen:.4f}")
            if config.max_steps is not None and steps >= config.max_steps:
                break
        metrics = {"epoch": float(epoch), "train_loss": total / max(1, seen)}
        if len(valid_targets):
            outputs = predict(model, valid_inputs)
            metrics["valid_loss"] = float(loss_fn(outputs, valid_targets))
            metrics["valid_score"] = score(config.task, outputs, valid_targets)
        else:
            metrics["valid_score"] = -metrics["train_loss"] if not lower_is_better else metrics["train_loss"]
        result.history.append(metrics)
        current = metrics["valid_score"]
        improved = current < best_score if lower_is_better else current > best_score
        if improved:
            best_score, result.best_epoch, stale = current, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if config.progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "epoch")
            if lines is None:
                tqdm.write(f"epoch {epoch}: {shown}")
            else:
                lines.say(f"epoch {epoch}: {shown}")
        if report is not None:
            report(epoch, metrics)
        if stale >= config.patience or (config.max_steps is not None and steps >= config.max_steps):
            break
    model.load_state_dict(best_state)
    result.best_score = best_score
    result.seconds = time.perf_counter() - started
    return result
