"""Word vectors (gensim Word2Vec / FastText) trained on tokenized Korean text, and reused.

Training on all NSMC reviews takes minutes, so ``cached_embeddings`` keys the result by
everything that changes it (corpus, its content or size, tokenizer and its options,
algorithm and parameters) and trains only on a miss. Inside a platform session the vectors
go through ``nsml.cache`` (the server's store, shared by the owner's sessions); elsewhere
they live under ``$KORTEXT_HOME`` (``~/.cache/kortext``) and ``kortext pretrain`` fills
that folder ahead of time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kortext.normalize import normalize as normalize_text
from kortext.tokenizers import Tokenizer, default_workers, get_tokenizer

KINDS = ("word2vec", "fasttext")
CONG = "cong"  # the installed source of pretrained vectors, beside the ones trained here
VECTORS_FILE = "vectors.kv"
INFO_FILE = "info.json"
HOME_ENV = "KORTEXT_HOME"

# gensim's defaults, except min_count (reviews are short; singletons are mostly typos) and
# a fixed seed so that a cache entry is what anyone would train from the same inputs.
DEFAULTS: dict[str, Any] = {"vector_size": 100, "window": 5, "min_count": 2, "epochs": 5, "seed": 0}


def _gensim_models() -> Any:
    try:
        from gensim import models
    except ImportError as error:
        raise RuntimeError("embeddings need gensim: pip install 'opennsml[korean]'") from error
    return models


def _params(params: dict[str, Any]) -> dict[str, Any]:
    merged = {**DEFAULTS, **params}
    merged["workers"] = merged.get("workers") or default_workers()
    return merged


def _check_sentences(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    kept = [list(tokens) for tokens in sentences if tokens]
    if not kept:
        raise ValueError("no tokens to train embeddings on: every sentence was empty")
    return kept


def train_word2vec(sentences: Sequence[Sequence[str]], **params: Any) -> Any:
    """gensim ``KeyedVectors``; ``params`` go to ``gensim.models.Word2Vec`` (``sg=1`` for skip-gram)."""
    model = _gensim_models().Word2Vec(sentences=_check_sentences(sentences), **_params(params))
    return model.wv


def train_fasttext(sentences: Sequence[Sequence[str]], **params: Any) -> Any:
    """``FastTextKeyedVectors``: builds vectors for unseen words from character n-grams, which
    suits Korean, where one stem appears with many endings."""
    model = _gensim_models().FastText(sentences=_check_sentences(sentences), **_params(params))
    return model.wv


TRAINERS: dict[str, Callable[..., Any]] = {"word2vec": train_word2vec, "fasttext": train_fasttext}


def load_vectors(folder: str | Path, mmap: str | None = None) -> Any:
    """``mmap="r"`` maps the arrays saved apart (see :func:`save_for_mmap`) instead of reading them."""
    path = Path(folder) / VECTORS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no embeddings at {path}; train them with kortext pretrain or cached_embeddings"
        )
    return _gensim_models().KeyedVectors.load(str(path), mmap=mmap)


def save_for_mmap(vectors: Any, folder: str | Path) -> None:
    """Save every array in its own ``.npy`` file, which gensim can memory-map on load, so a
    session that loads published vectors starts at once and pages in only what it reads."""
    arrays = [name for name, value in vars(vectors).items() if hasattr(value, "dtype") and value.size]
    Path(folder).mkdir(parents=True, exist_ok=True)
    vectors.save(str(Path(folder) / VECTORS_FILE), separately=arrays)


def pretrained(name: str, path: str | Path | None = None) -> Any:
    """KeyedVectors of the shared resource ``name`` (published by ``kortext pretrain --publish``),
    memory-mapped read-only. Goes through ``nsml.shared``: on the platform the files are
    restored into the session; elsewhere they are read from ``nsml_local/shared/NAME``.
    ``"cong"`` is Kiwi's CoNG morpheme vectors (:mod:`kortext.cong_vectors`), already installed."""
    if name == CONG and path is None:  # installed with kiwipiepy-model: nothing to publish
        from kortext.cong_vectors import CongKeyedVectors

        return CongKeyedVectors()
    import nsml  # only here: kortext itself does not depend on the platform

    return load_vectors(nsml.shared(name, path), mmap="r")


def tokenizer_spec(tokenizer: Tokenizer) -> dict[str, Any]:
    """The tokenizer's name and options: what changes its output, hence the vectors."""
    state = {k: v for k, v in tokenizer.__getstate__().items() if not k.startswith("_")}
    if "model_bytes" in state:  # sentencepiece: the model's content, not where it lies
        state["model_bytes"] = hashlib.sha256(state["model_bytes"]).hexdigest()
        state.pop("model_path", None)
    return {"name": tokenizer.name, **{k: v if _plain(v) else repr(v) for k, v in sorted(state.items())}}


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def build_embeddings(
    output_path: str,
    *,
    texts: Sequence[str],
    tokenizer: Tokenizer,
    kind: str,
    normalize: bool,
    info: dict[str, Any],
    params: dict[str, Any],
    progress: bool = True,
) -> None:
    """Tokenize, train, and write ``vectors.kv`` + ``info.json`` into the folder ``output_path``."""
    prepared = [normalize_text(text) for text in texts] if normalize else list(texts)
    sentences = tokenizer.tokenize_batch(prepared, progress=progress)
    vectors = TRAINERS[kind](sentences, **params)
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    vectors.save(str(folder / VECTORS_FILE))
    summary = {**info, "sentences": len(sentences), "vocabulary": len(vectors.index_to_key)}
    (folder / INFO_FILE).write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")


def _build_entry(output_path: str, **spec: Any) -> None:
    """The function ``nsml.cache`` runs (and keys by its source): rebuilds the tokenizer from its spec."""
    options = {k: v for k, v in spec["tokenizer"].items() if k != "name"}
    if "model_bytes" in options:
        raise ValueError(
            "a sentencepiece tokenizer cannot be rebuilt inside nsml.cache; pass texts pre-split"
        )
    tokenizer = get_tokenizer(spec["tokenizer"]["name"], **options)
    build_embeddings(
        output_path,
        texts=spec["texts"],
        tokenizer=tokenizer,
        kind=spec["kind"],
        normalize=spec["normalize"],
        info={k: v for k, v in spec.items() if k != "texts"},
        params=spec["params"],
    )


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "kortext")


def _corpus_texts(corpus_name: str, corpus_path: str | Path | None, limit: int | None) -> list[str]:
    if corpus_name == "nsmc":
        from kortext.corpora import nsmc_reviews

        return nsmc_reviews(corpus_path, limit)
    raise ValueError(
        f"unknown corpus {corpus_name!r}: the built-in one is 'nsmc'; pass texts=[...] for others"
    )


def embeddings_key(spec: dict[str, Any], texts: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode())
    for text in texts:
        digest.update(text.encode() + b"\n")
    return digest.hexdigest()


def cached_embeddings(
    corpus_name: str,
    tokenizer: str | Tokenizer = "kiwi",
    kind: str = "word2vec",
    *,
    texts: Sequence[str] | None = None,
    corpus_path: str | Path | None = None,
    limit: int | None = None,
    normalize: bool = True,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **params: Any,
) -> Any:
    """KeyedVectors for ``corpus_name`` (``"nsmc"``, or any name with ``texts=``), trained once.

    ``params`` go to gensim (``vector_size``, ``window``, ``min_count``, ``epochs``, ``sg``...).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown embedding kind {kind!r}; choose one of {', '.join(KINDS)}")
    tok = get_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    corpus = list(texts) if texts is not None else _corpus_texts(corpus_name, corpus_path, limit)
    training = {k: v for k, v in _params(params).items() if k != "workers"}  # workers do not change results
    spec = {"corpus": corpus_name, "tokenizer": tokenizer_spec(tok), "kind": kind, "normalize": normalize}
    spec["params"] = training
    key = embeddings_key(spec, corpus)
    if _on_platform():
        return _via_nsml_cache(spec, corpus, key, cache_dir)
    folder = Path(cache_dir) if cache_dir else home() / "embeddings"
    target = folder / key
    if not (target / VECTORS_FILE).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=folder))
        try:
            info = {**spec, "key": key}
            build_embeddings(
                str(scratch), texts=corpus, tokenizer=tok, kind=kind, normalize=normalize, info=info,
                params={**training, "workers": params.get("workers")}, progress=progress,
            )  # fmt: skip
            if not target.exists():
                os.replace(scratch, target)  # atomic: a reader never sees half an entry
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return load_vectors(target)


def _on_platform() -> bool:
    return os.environ.get("NSML_ON_PLATFORM") == "1" and "NSML_EVAL_FD" not in os.environ


def _via_nsml_cache(spec: dict[str, Any], corpus: list[str], key: str, cache_dir: str | Path | None) -> Any:
    import nsml  # only here: kortext itself does not depend on the platform

    target = Path(cache_dir or "kortext_embeddings") / key
    nsml.cache(_build_entry, output_path=str(target), texts=corpus, **spec)
    return load_vectors(target)
