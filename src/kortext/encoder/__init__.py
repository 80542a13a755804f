"""A small pretrained Korean transformer encoder: ``kortext pretrain --kind mlm`` trains it on
NSMC reviews and kin questions (``pretrain``), publishes it like the word vectors, and the
missions fine-tune it with ``--model encoder`` (``kortext.pipeline.encoder``).

Tokens are characters (``kortext.tokenizers.CharTokenizer``, spaces kept as ``▁``): Korean
syllables carry most of a morpheme, nothing is out of vocabulary in noisy reviews, the
vocabulary (a few thousand syllables, at most 6,000) keeps the embedding table small, and it needs no model
of its own that a submission would have to ship; the missions' default tokenizer is the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kortext.encoder.model import EncoderClassifier, EncoderConfig, MaskedLanguageModel, TransformerEncoder
from kortext.encoder.pretrain import ENCODER_FILE, INFO_FILE, VOCAB_FILE, PretrainSettings
from kortext.vocab import Vocab

DEFAULT_NAME = "kortext-encoder"  # the shared resource `--model encoder` looks for by default


@dataclass
class PretrainedEncoder:
    config: EncoderConfig
    vocab: Vocab
    weights: dict[str, torch.Tensor]
    info: dict[str, Any]

    @property
    def tokenizer(self) -> str:
        return str(self.info.get("tokenizer", {}).get("name", "char"))


def load_encoder(folder: str | Path) -> PretrainedEncoder:
    folder = Path(folder)
    if not (folder / ENCODER_FILE).is_file():
        raise FileNotFoundError(f"no pretrained encoder in {folder} (no {ENCODER_FILE}); make one with "
                                "`python -m kortext pretrain --kind mlm`")  # fmt: skip
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    vocab = Vocab.from_dict(json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8")))
    weights = torch.load(folder / ENCODER_FILE, map_location="cpu", weights_only=True)
    return PretrainedEncoder(EncoderConfig.from_dict(info["config"]), vocab, weights, info)


def pretrained_encoder(name: str) -> PretrainedEncoder:
    """A folder holding an encoder, else the shared resource ``name`` (through ``nsml.shared``:
    restored on the platform, ``nsml_local/shared/NAME`` elsewhere)."""
    if Path(name).is_dir():
        return load_encoder(name)
    import nsml  # only here: kortext itself does not depend on the platform

    return load_encoder(nsml.shared(name))


__all__ = [
    "DEFAULT_NAME",
    "EncoderClassifier",
    "EncoderConfig",
    "MaskedLanguageModel",
    "PretrainSettings",
    "PretrainedEncoder",
    "TransformerEncoder",
    "load_encoder",
    "pretrained_encoder",
]
