"""``--model encoder``: fine-tune the pretrained transformer encoder (``kortext.encoder``).

The encoder's vocabulary and tokenizer come with its weights, so the texts are tokenized the
way it was pretrained; the checkpoint keeps the architecture, vocabulary and fine-tuned
weights, so a submission never needs the shared resource. Without published weights the same
architecture starts from random initialisation, and the log says so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from kortext.encoder import DEFAULT_NAME, PretrainedEncoder, pretrained_encoder
from kortext.encoder.model import SPECIALS, EncoderClassifier, EncoderConfig
from kortext.encoder.pretrain import SIZES
from kortext.pipeline.neural import NeuralPipeline
from kortext.training import ReportFn
from kortext.vocab import Vocab

NO_PRETRAINED = "none"


class EncoderPipeline(NeuralPipeline):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encoder_config: EncoderConfig | None = None
        self._pretrained: PretrainedEncoder | None = None

    def _resolve_pretrained(self) -> PretrainedEncoder | None:
        """The asked-for weights (missing ones are an error), else the default shared resource
        when it is published, else none."""
        name = self.options.pretrained
        if name == NO_PRETRAINED:
            print("encoder: --pretrained none: training from random initialisation", flush=True)
            return None
        try:
            found = pretrained_encoder(name or DEFAULT_NAME)
        except Exception as error:  # nsml.shared: FileNotFoundError off the platform, 404 on it
            missing = isinstance(error, FileNotFoundError) or getattr(error, "status", None) == 404
            if name or not missing:
                raise ValueError(
                    f"encoder: cannot load pretrained encoder {name or DEFAULT_NAME!r}: {error}"
                ) from error
            print(f"encoder: no pretrained encoder {DEFAULT_NAME!r} published (kortext pretrain --kind mlm "
                  f"--publish {DEFAULT_NAME}); training from random initialisation", flush=True)  # fmt: skip
            return None
        info = found.info
        print(
            f"encoder: fine-tuning pretrained encoder {name or DEFAULT_NAME!r} ({info.get('size')}, "
            f"{info.get('steps')} steps, {info.get('minutes')} min, {info.get('texts')} texts + "
            f"{info.get('pairs')} pairs, tokenizer {found.tokenizer})",
            flush=True,
        )
        return found

    def _fit(self, inputs: list[str], labels: np.ndarray, valid: np.ndarray, report: ReportFn | None) -> None:
        self._pretrained = self._resolve_pretrained()
        if self._pretrained is not None and self.options.tokenizer != self._pretrained.tokenizer:
            self.options = replace(self.options, tokenizer=self._pretrained.tokenizer)
            self._tokenizer = None
        try:
            super()._fit(inputs, labels, valid, report)
        finally:
            self._pretrained = None  # the weights live on in the network; free the copy

    def _vocabulary(self, corpus: list[list[str]]) -> Vocab:
        if self._pretrained is not None:
            return self._pretrained.vocab
        return Vocab([*SPECIALS, *super()._vocabulary(corpus).itos[2:]])

    def build(self, corpus: list[list[str]] | None = None) -> nn.Module:
        if corpus is not None:  # fitting: the pretrained architecture, or a fresh one of its size
            if self._pretrained is not None:
                self.encoder_config = self._pretrained.config
            else:
                size = SIZES[self.options.encoder_size]
                self.encoder_config = EncoderConfig(vocab_size=len(self.vocab or []), **size)
        assert self.encoder_config is not None, "fit or load the pipeline first"
        network = EncoderClassifier(self.encoder_config, dropout=self.encoder_config.dropout)
        if corpus is not None and self._pretrained is not None:
            network.encoder.load_state_dict(self._pretrained.weights)
        return network

    def _save(self, folder: Path) -> dict[str, Any]:
        assert self.encoder_config is not None
        return {**super()._save(folder), "encoder": self.encoder_config.to_dict()}

    def _load(self, folder: Path, meta: dict[str, Any]) -> None:
        self.encoder_config = EncoderConfig.from_dict(meta["encoder"])
        super()._load(folder, meta)
