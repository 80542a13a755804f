"""Kin question similarity, the 2018 way: a character-level MLP baseline.

Runs the same on the platform (`nsml run -d demo_kin`) and on a laptop
(`python main.py`, which falls back to the demo data shipped with OpenNSML).
"""

from __future__ import annotations

import argparse
import os
import random

import torch
from torch import nn

import nsml

VOCAB = 256  # hashed character buckets


def read_dataset(root: str) -> tuple[list[str], list[int]]:
    with open(os.path.join(root, "train", "train_data"), encoding="utf-8") as handle:
        pairs = handle.read().splitlines()
    with open(os.path.join(root, "train", "train_label"), encoding="utf-8") as handle:
        labels = [int(line) for line in handle.read().splitlines()]
    return pairs, labels


def char_counts(text: str) -> torch.Tensor:
    vector = torch.zeros(VOCAB)
    for char in text.replace(" ", ""):
        vector[ord(char) % VOCAB] += 1.0
    return vector / max(1.0, float(vector.sum()))


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def featurize(pair: str) -> torch.Tensor:
    """Character histograms of both questions plus how much they overlap."""
    first, _, second = pair.partition("\t")
    a, b = char_counts(first), char_counts(second)
    x, y = first.replace(" ", ""), second.replace(" ", "")
    bigrams = overlap({x[i : i + 2] for i in range(len(x) - 1)}, {y[i : i + 2] for i in range(len(y) - 1)})
    similarity = torch.tensor(
        [overlap(set(x), set(y)), bigrams, min(len(x), len(y)) / max(1, len(x), len(y))]
    )
    return torch.cat([(a - b).abs(), a * b * 100, similarity * 10])


class PairMLP(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * VOCAB + 3, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden // 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def bind_model(model: PairMLP) -> None:
    def save(dir_name: str, **kwargs: object) -> None:
        torch.save(model.state_dict(), os.path.join(dir_name, "model.pt"))

    def load(dir_name: str, **kwargs: object) -> None:
        model.load_state_dict(torch.load(os.path.join(dir_name, "model.pt")))

    def infer(raw_data: list[str], **kwargs: object) -> list[tuple[float, int]]:
        model.eval()
        with torch.no_grad():
            probs = torch.sigmoid(model(torch.stack([featurize(p) for p in raw_data])))
        return [(float(p), int(p > 0.5)) for p in probs]

    nsml.bind(save=save, load=load, infer=infer)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=1e-3)
    config = parser.parse_args()

    random.seed(1)
    torch.manual_seed(1)
    model = PairMLP(config.hidden, config.dropout)
    bind_model(model)
    if config.pause:
        nsml.paused(scope=locals())

    root = nsml.DATASET_PATH
    if not nsml.HAS_DATASET and not nsml.IS_ON_NSML:
        from nsml.datasets.demo_catalog import DEMO_ROOT

        root = str(DEMO_ROOT / "demo_kin")
    pairs, labels = read_dataset(root)
    features = torch.stack([featurize(p) for p in pairs])
    targets = torch.tensor(labels, dtype=torch.float32)
    order = torch.randperm(len(pairs))
    cut = int(len(pairs) * 0.8)
    train_idx, valid_idx = order[:cut], order[cut:]
    print(f"{len(pairs)} pairs: {cut} train, {len(pairs) - cut} validation", flush=True)

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(int(config.iteration), config.epochs):
        model.train()
        total = 0.0
        for batch in train_idx.split(32):
            optimizer.zero_grad()
            loss = loss_fn(model(features[batch]), targets[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            valid_pred = model(features[valid_idx]) > 0
            accuracy = float((valid_pred == targets[valid_idx].bool()).float().mean())
        train_loss = total / len(train_idx)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, validation accuracy {accuracy:.3f}", flush=True)
        nsml.report(
            summary=True,
            scope=locals(),
            epoch=epoch,
            epoch_total=config.epochs,
            train__loss=train_loss,
            valid__accuracy=accuracy,
            step=epoch,
        )
        nsml.save(epoch)


if __name__ == "__main__":
    main()
