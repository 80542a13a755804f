"""From raw mission lines to predictions: tokenise, encode, train, predict, save, load.

A mission's ``main.py`` picks a model by name and hands this module its raw lines (a
review, or two questions separated by a tab) and labels. Everything a submission needs to
predict later (vocabulary, fitted TF-IDF vocabularies, label statistics, weights) is written
by ``save`` into the checkpoint folder, because a submission runs in a fresh directory that
has neither the training data nor anything computed during training.

One module per concern: ``base`` (options, the shared contract, persistence and
``make_pipeline``), ``linear`` (TF-IDF), ``neural`` (PyTorch models) and ``ensemble``
(stacked members, averaged checkpoints); every public name is importable from here.
"""

from kortext.pipeline.base import (
    META,
    MODELS,
    NEURAL,
    PAIR_ONLY,
    Options,
    Pipeline,
    Task,
    check_model,
    make_pipeline,
    split_pair,
    split_pairs,
)
from kortext.pipeline.ensemble import EnsemblePipeline, average_checkpoints, parse_checkpoints
from kortext.pipeline.linear import LinearPipeline
from kortext.pipeline.neural import SUBWORD, SUBWORD_MODEL, NeuralPipeline

__all__ = [
    "META",
    "MODELS",
    "NEURAL",
    "PAIR_ONLY",
    "SUBWORD",
    "SUBWORD_MODEL",
    "EnsemblePipeline",
    "LinearPipeline",
    "NeuralPipeline",
    "Options",
    "Pipeline",
    "Task",
    "average_checkpoints",
    "check_model",
    "make_pipeline",
    "parse_checkpoints",
    "split_pair",
    "split_pairs",
]
