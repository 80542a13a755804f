"""Tokenizers behind one interface: ``get_tokenizer(name, **options)``.

Backends are imported only when asked for, so ``import kortext.tokenizers`` stays cheap
and a missing optional library only matters to the one who uses it.
"""

from __future__ import annotations

import importlib
from typing import Any

from kortext.tokenizers.base import Tokenizer, TokenizerUnavailable, default_workers

_REGISTRY: dict[str, tuple[str, str]] = {
    "kiwi": ("kortext.tokenizers.kiwi", "KiwiTokenizer"),
    "okt": ("kortext.tokenizers.okt", "OktTokenizer"),
    "mecab": ("kortext.tokenizers.mecab", "MecabTokenizer"),
    "jamo": ("kortext.tokenizers.simple", "JamoTokenizer"),
    "char": ("kortext.tokenizers.simple", "CharTokenizer"),
    "sentencepiece": ("kortext.tokenizers.sentencepiece", "SentencePieceTokenizer"),
}
NAMES = tuple(_REGISTRY)
DEFAULT = "kiwi"


def tokenizer_class(name: str) -> type[Tokenizer]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {', '.join(NAMES)}")
    module, attribute = _REGISTRY[name]
    cls: type[Tokenizer] = getattr(importlib.import_module(module), attribute)
    return cls


def get_tokenizer(name: str = DEFAULT, **options: Any) -> Tokenizer:
    """``get_tokenizer("sentencepiece", model="dir/spm.model")``; other backends need no options."""
    return tokenizer_class(name)(**options)


def __getattr__(attribute: str) -> Any:
    """``from kortext.tokenizers import SentencePieceTokenizer`` without importing every backend."""
    for module, name in _REGISTRY.values():
        if name == attribute:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


__all__ = ["DEFAULT", "NAMES", "Tokenizer", "TokenizerUnavailable", "default_workers", "get_tokenizer"]
