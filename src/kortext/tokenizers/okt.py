"""Okt (Open Korean Text) through KoNLPy; it runs inside a JVM started by JPype."""

from __future__ import annotations

import os
import shutil
from typing import Any

from kortext.tokenizers.base import Tokenizer, TokenizerUnavailable

NO_JAVA = (
    "okt needs a Java runtime (JDK 8+) and none was found on PATH or in JAVA_HOME; "
    "install one (e.g. apt-get install openjdk-17-jre-headless) or use the kiwi tokenizer"
)


def java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java")) or bool(home and os.path.exists(os.path.join(home, "bin", "java")))


class OktTokenizer(Tokenizer):
    """Morphemes; ``norm`` fixes spelling ("사릉해" -> "사랑해"), ``stem`` gives dictionary forms."""

    name = "okt"
    executor = "thread"  # JPype releases the GIL in Java calls; a forked child cannot use the JVM

    def __init__(self, norm: bool = False, stem: bool = False, with_tags: bool = False) -> None:
        super().__init__()
        self.norm = norm
        self.stem = stem
        self.with_tags = with_tags

    def _load(self) -> Any:
        if not java_available():
            raise TokenizerUnavailable(NO_JAVA)
        try:
            from konlpy.tag import Okt
        except ImportError as error:
            raise TokenizerUnavailable("okt needs konlpy: pip install 'opennsml[korean]'") from error
        try:
            return Okt()
        except Exception as error:  # JPype reports a broken JVM with many exception types
            raise TokenizerUnavailable(f"okt could not start the JVM ({error}); {NO_JAVA}") from error

    def tokenize(self, text: str) -> list[str]:
        if not text.strip():
            return []
        if self.with_tags:
            pairs = self.backend.pos(text, norm=self.norm, stem=self.stem)
            return [f"{form}/{tag}" for form, tag in pairs]
        return list(self.backend.morphs(text, norm=self.norm, stem=self.stem))
