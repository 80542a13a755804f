"""Training scripts that several test modules run as sessions, and how to read their logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Platform

# A 2018-style script: trains on the dataset for --epochs, reporting and saving each one;
# --pause makes it serve its checkpoints (submissions, infer).
TRAIN_2018 = """
    import argparse, json, os, time
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--tag", default="")
    config = parser.parse_args()

    state = {"weights": 0}

    def save(dir_name, **kwargs):
        with open(os.path.join(dir_name, "model.json"), "w") as handle:
            json.dump(state, handle)

    def load(dir_name, **kwargs):
        with open(os.path.join(dir_name, "model.json")) as handle:
            state.update(json.load(handle))

    def infer(raw_data, **kwargs):
        return [(0.5, 1) for _ in raw_data]

    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())

    with open(os.path.join(nsml.DATASET_PATH, "train", "train_data"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    print(f"training on {len(lines)} examples; test visible: "
          f"{os.path.exists(os.path.join(nsml.DATASET_PATH, 'test'))}", flush=True)
    for epoch in range(int(config.iteration), config.epochs):
        state["weights"] += 1
        nsml.report(summary=True, scope=locals(), step=epoch, epoch=epoch,
                    train__loss=1.0 / (epoch + 1))
        nsml.save(epoch)
        print(f"epoch {epoch} done, weights {state['weights']}", flush=True)
        time.sleep(config.sleep)
"""
# arguments of TRAIN_2018 that keep a session running (and holding its slot) until stopped
LONG = "--epochs 1000 --sleep 0.1"

# Prints the GPUs the session was given, then holds them for argv[1] tenths of a second.
HOLD = """
    import os, sys, time, nsml
    print("GPUS", os.environ["CUDA_VISIBLE_DEVICES"] or "-", nsml.GPU_NUM, flush=True)
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 0):
        time.sleep(0.1)
"""


def gpus_seen(platform: Platform, name: str) -> tuple[str, str]:
    """(CUDA_VISIBLE_DEVICES or "-", nsml.GPU_NUM) as a HOLD session printed them."""
    line = next(x for x in platform.nsml("logs", name).stdout.splitlines() if x.startswith("GPUS"))
    _, devices, count = line.split()
    return devices, count
