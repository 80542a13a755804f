"""``kortext pretrain --kind mlm``: the corpus (NSMC reviews + kin question pairs), the folder
a run checkpoints into and resumes from, and the summary the command prints or publishes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kortext.corpora import kin_question_pairs, nsmc_reviews
from kortext.encoder.pretrain import SIZES, PretrainSettings, pretrain_texts
from kortext.tokenizers import get_tokenizer


def default_folder(home: Path, settings: PretrainSettings, tokenizer: str) -> Path:
    return home / "encoders" / f"mlm-{settings.size}-{tokenizer}"


def mlm_corpus(
    corpus_path: Path | None, kin_path: Path | None, limit: int | None
) -> tuple[list[str], list[tuple[str, str]]]:
    """All NSMC reviews (or the first ``limit``) and the kin train/validation question pairs.

    The kin pairs are optional when nobody named them: a machine without them still pretrains
    on the reviews, and says so."""
    texts = nsmc_reviews(corpus_path, limit)
    try:
        pairs = kin_question_pairs(kin_path)
    except FileNotFoundError:
        if kin_path is not None:
            raise
        print("mlm: kin question pairs not found (--kin-path); pretraining on reviews only", file=sys.stderr)
        pairs = []
    return texts, pairs


def run_mlm(
    settings: PretrainSettings, tokenizer: str, corpus_path: Path | None, kin_path: Path | None,
    limit: int | None, folder: Path,
) -> dict[str, Any]:  # fmt: skip
    """Pretrain into ``folder`` (resuming a stopped run there); the run's summary."""
    if settings.size not in SIZES:
        raise ValueError(f"unknown size {settings.size!r}; choose one of {', '.join(SIZES)}")
    if settings.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu")
    texts, pairs = mlm_corpus(corpus_path, kin_path, limit)
    print(
        f"mlm: pretraining a {settings.size} encoder ({tokenizer}) on {len(texts)} reviews and "
        f"{len(pairs)} question pairs into {folder}",
        file=sys.stderr,
        flush=True,
    )
    tok = get_tokenizer(tokenizer)
    info = {"corpus": "nsmc+kin" if pairs else "nsmc", "tokenizer": {"name": tokenizer}}
    summary = pretrain_texts(texts, pairs, tok, settings, folder, info=info)
    return {**summary, "path": str(folder)}
