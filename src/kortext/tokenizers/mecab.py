"""MeCab-ko through python-mecab-ko, which bundles mecab-ko-dic (no system MeCab needed)."""

from __future__ import annotations

from typing import Any

from kortext.tokenizers.base import Tokenizer, TokenizerUnavailable


class MecabTokenizer(Tokenizer):
    """Morphemes; ``with_tags=True`` gives ``form/TAG`` with mecab-ko-dic's tags (``NNG``, ``JKS``...)."""

    name = "mecab"

    def __init__(self, with_tags: bool = False, dictionary_path: str | None = None) -> None:
        super().__init__()
        self.with_tags = with_tags
        self.dictionary_path = dictionary_path

    def _load(self) -> Any:
        try:
            from mecab import MeCab
        except ImportError as error:
            raise TokenizerUnavailable(
                "mecab needs python-mecab-ko (it bundles mecab-ko-dic): pip install 'opennsml[korean]'"
            ) from error
        return MeCab(dictionary_path=self.dictionary_path) if self.dictionary_path else MeCab()

    def tokenize(self, text: str) -> list[str]:
        if not text.strip():
            return []
        if self.with_tags:
            return [f"{form}/{tag}" for form, tag in self.backend.pos(text)]
        return list(self.backend.morphs(text))
