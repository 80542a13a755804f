"""Character and jamo tokenizers: no dictionary, nothing out of vocabulary.

Whitespace becomes one ``▁`` token (as in sentencepiece), because word boundaries carry
meaning in Korean spacing; ``keep_space=False`` drops it.
"""

from __future__ import annotations

from kortext.jamo import decompose
from kortext.tokenizers.base import Tokenizer

SPACE = "▁"


def _characters(text: str, keep_space: bool) -> list[str]:
    tokens: list[str] = []
    for char in text:
        if char.isspace():
            if keep_space and tokens and tokens[-1] != SPACE:
                tokens.append(SPACE)
        else:
            tokens.append(char)
    if tokens and tokens[-1] == SPACE:
        tokens.pop()
    return tokens


class CharTokenizer(Tokenizer):
    name = "char"
    # Millions of chars/s in one process: sending texts to a pool costs more than it saves.
    min_parallel = 1_000_000

    def __init__(self, keep_space: bool = True) -> None:
        super().__init__()
        self.keep_space = keep_space

    def tokenize(self, text: str) -> list[str]:
        return _characters(text, self.keep_space)


class JamoTokenizer(Tokenizer):
    """One token per jamo (conjoining jamo, so ``kortext.jamo.compose("".join(tokens))`` reverses it)."""

    name = "jamo"
    min_parallel = 1_000_000  # as for characters: pickling outweighs the work

    def __init__(self, keep_space: bool = True, compatibility: bool = False) -> None:
        super().__init__()
        self.keep_space = keep_space
        self.compatibility = compatibility

    def tokenize(self, text: str) -> list[str]:
        return _characters(decompose(text, compatibility=self.compatibility), self.keep_space)
