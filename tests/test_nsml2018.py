"""Conformance: scripts written the ways 2018 NSML participants wrote them run unchanged
through ``run``, ``model ls``, ``submit -t``, ``submit``, ``fork`` and ``resume``.

The scripts follow the official 2018 baselines (movie review: PyTorch, ``torch.save`` to
the path ``save`` gets, a DataLoader with workers, a ``setup.py`` naming a Docker image
with ``distutils``; kin: the path used as a folder with ``os.makedirs``, a
``requirements.txt``), plus the other habits of the time: ``infer`` returning bare
values, ``nsml.infer`` called by the script itself. The one change from 2018 is
``loss.item()`` for ``loss.data[0]``, which PyTorch 0.4 deprecated and later removed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Platform, running_platform

COMMON = r"""
# -*- coding: utf-8 -*-
import argparse
import os

import numpy as np
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, Dataset

import nsml
from nsml import DATASET_PATH, GPU_NUM, HAS_DATASET, IS_ON_NSML


def featurize(text):
    return np.array([len(text) / 100.0, text.count(" ") / 10.0, 1.0], dtype=np.float32)


class ReviewDataset(Dataset):
    def __init__(self, dataset_path):
        with open(os.path.join(dataset_path, "train", "train_data"), "rt", encoding="utf-8") as f:
            self.reviews = [featurize(line.strip()) for line in f.readlines()]
        with open(os.path.join(dataset_path, "train", "train_label")) as f:
            self.labels = [np.float32(x) for x in f.readlines()]

    def __len__(self):
        return len(self.reviews)

    def __getitem__(self, idx):
        return self.reviews[idx], self.labels[idx]


class Model(nn.Module):
    def __init__(self):
        super(Model, self).__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, data):
        return self.fc(data).squeeze(-1)


def train(model, config, loss_fn):
    dataset = ReviewDataset(DATASET_PATH)
    train_loader = DataLoader(dataset=dataset, batch_size=config.batch, shuffle=True, num_workers=2)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    total_batch = len(train_loader)
    for epoch in range(int(config.iteration), config.epochs):
        avg_loss = 0.0
        for i, (data, labels) in enumerate(train_loader):
            predictions = model(data)
            loss = loss_fn(predictions, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            avg_loss += loss.item()
        print("epoch:", epoch, " train_loss:", float(avg_loss / total_batch))
        nsml.report(summary=True, scope=locals(), epoch=epoch, epoch_total=config.epochs,
                    train__loss=float(avg_loss / total_batch), step=epoch)
        nsml.save(epoch)


def arguments():
    args = argparse.ArgumentParser()
    args.add_argument("--mode", type=str, default="train")
    args.add_argument("--pause", type=int, default=0)
    args.add_argument("--iteration", type=str, default="0")
    args.add_argument("--epochs", type=int, default=2)
    args.add_argument("--batch", type=int, default=8)
    return args.parse_args()
"""

MOVIE = (
    COMMON
    + r"""

def bind_model(model, config):
    def save(filename, *args):
        checkpoint = {"model": model.state_dict()}
        torch.save(checkpoint, filename)

    def load(filename, *args):
        checkpoint = torch.load(filename)
        model.load_state_dict(checkpoint["model"])
        print("Model loaded")

    def infer(raw_data, **kwargs):
        model.eval()
        with torch.no_grad():
            output = model(torch.from_numpy(np.stack([featurize(x) for x in raw_data])))
        point = output.clamp(1, 10).tolist()
        confidence = [0] * len(point)
        return list(zip(confidence, point))

    nsml.bind(save=save, load=load, infer=infer)


if __name__ == "__main__":
    config = arguments()
    model = Model()
    bind_model(model, config)
    if config.pause:
        nsml.paused(scope=locals())
    if config.mode == "train":
        train(model, config, nn.MSELoss())
        print("SELF-INFER", nsml.infer(["정말 재미있는 영화"]))
"""
)

KIN = (
    COMMON
    + r"""
import sklearn  # named in requirements.txt


def bind_model(model, config):
    def save(dir_name, *args):
        os.makedirs(dir_name, exist_ok=True)
        torch.save(model.state_dict(), os.path.join(dir_name, "model"))

    def load(dir_name, *args):
        model.load_state_dict(torch.load(os.path.join(dir_name, "model")))
        print("Model loaded")

    def infer(raw_data, **kwargs):
        model.eval()
        with torch.no_grad():
            output = torch.sigmoid(model(torch.from_numpy(np.stack([featurize(x) for x in raw_data]))))
        prediction = (output > 0.5).long()
        return list(zip(output.flatten().tolist(), prediction.flatten().tolist()))

    nsml.bind(save=save, load=load, infer=infer)


if __name__ == "__main__":
    config = arguments()
    model = Model()
    bind_model(model, config)
    if config.pause:
        nsml.paused(scope=locals())
    if config.mode == "train":
        train(model, config, nn.BCEWithLogitsLoss())
"""
)

BARE = (
    COMMON
    + r"""

def bind_model(model, config):
    def save(dir_name, *args):  # writes into the folder without creating it
        torch.save(model.state_dict(), os.path.join(dir_name, "model.pt"))

    def load(dir_name, *args):
        model.load_state_dict(torch.load(os.path.join(dir_name, "model.pt")))
        print("Model loaded")

    def infer(raw_data, **kwargs):  # bare labels, no probabilities
        model.eval()
        with torch.no_grad():
            output = model(torch.from_numpy(np.stack([featurize(x) for x in raw_data])))
        return [int(value > 0) for value in output.tolist()]

    nsml.bind(save=save, load=load, infer=infer)


if __name__ == "__main__":
    config = arguments()
    model = Model()
    bind_model(model, config)
    if config.pause:
        nsml.paused(scope=locals())
    if config.mode == "train":
        train(model, config, nn.BCEWithLogitsLoss())
"""
)

SETUP_IMAGE = """#nsml: nsml/ml:cuda9.0-cudnn7-tf-1.11torch0.4keras2.2
from distutils.core import setup

setup(
    name='nsml movie review',
    version='1.0',
    description='',
    install_requires=[]
)
"""

SETUP_PLAIN = """#nsml: pytorch/pytorch:0.4.1-cuda9-cudnn7-runtime
from distutils.core import setup
setup(name='kin', version='1.0')
"""

SCRIPTS = {
    "movie": ("demo_movie", MOVIE, {"setup.py": SETUP_IMAGE}),
    "kin": ("demo_kin", KIN, {"requirements.txt": "scikit-learn\n"}),
    "bare": ("demo_kin", BARE, {"setup.py": SETUP_PLAIN}),
}


@pytest.fixture(scope="module")
def platform2018(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "nsml2018") as instance:
        yield instance


def _log(platform: Platform, name: str) -> str:
    return platform.nsml("logs", name).stdout


@pytest.mark.parametrize("style", sorted(SCRIPTS))
def test_a_2018_script_runs_unchanged(platform2018: Platform, style: str) -> None:
    platform = platform2018
    dataset, script, extra = SCRIPTS[style]
    folder = platform.project(f"nsml2018_{style}", script, **extra)
    name = platform.run(folder, dataset, "--epochs 2")
    session = platform.wait(name, timeout=300)
    log = _log(platform, name)
    assert session["status"] == "exited", log[-3000:]
    assert "epoch: 1" in log and "No module named" not in log
    if style == "movie":
        assert "SELF-INFER [(0," in log
        assert "setup.py names the Docker image nsml/ml:cuda9.0" in log
    if style == "kin":
        assert "[nsml] building environment" in log or "[nsml] reusing environment" in log

    checkpoints = platform.json("model", "ls", name)
    assert [c["name"] for c in checkpoints] == ["0", "1"]
    assert checkpoints[-1]["summary"]["train/loss"] is not None

    preview = platform.nsml("submit", name, "1", "-t")
    assert preview.returncode == 0 and "Traceback" not in preview.stdout
    scored = platform.json("submit", name, "1")
    assert scored["status"] == "scored", scored

    forked = platform.json("fork", name, "0", "-a", "--epochs 3")["name"]
    assert platform.wait(forked, timeout=300)["status"] == "exited", _log(platform, forked)[-3000:]
    fork_log = _log(platform, forked)  # --iteration 0: the 2018 loop goes on from epoch 0
    assert fork_log.index("Model loaded") < fork_log.index("epoch: 0") and "epoch: 2" in fork_log
    assert [c["name"] for c in platform.json("model", "ls", forked)] == ["0", "1", "2"]

    platform.nsml("resume", name)
    resumed = platform.wait(name, timeout=300)
    assert resumed["status"] == "exited", _log(platform, name)[-3000:]
    assert _log(platform, name).count("Model loaded") >= 1
