"""kortext.embeddings: training on real reviews, the cache key, the nsml.cache glue, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kortext.corpora import nsmc_reviews
from kortext.embeddings import _via_nsml_cache, cached_embeddings, embeddings_key, train_word2vec
from kortext.tokenizers import get_tokenizer

SMALL = {"vector_size": 32, "epochs": 2, "min_count": 3, "workers": 1}


@pytest.fixture
def reviews(shared_data: Path) -> list[str]:
    return nsmc_reviews(shared_data / "nsmc" / "reviews.tsv.gz", limit=1500)


def test_word2vec_learns_from_reviews(reviews: list[str]) -> None:
    sentences = get_tokenizer("mecab").tokenize_batch(reviews, workers=1)
    vectors = train_word2vec(sentences, **SMALL)
    assert vectors.vector_size == 32 and "영화" in vectors.key_to_index
    assert vectors["영화"].shape == (32,)
    with pytest.raises(ValueError, match="every sentence was empty"):
        train_word2vec([[], []])


def test_cached_embeddings_reuses_and_keys_by_settings(
    reviews: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NSML_ON_PLATFORM", raising=False)
    first = cached_embeddings("nsmc", "mecab", texts=reviews, cache_dir=tmp_path, progress=False, **SMALL)
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and (entries[0] / "vectors.kv").is_file()
    info = json.loads((entries[0] / "info.json").read_text())
    assert info["sentences"] == 1500 and info["tokenizer"]["name"] == "mecab"
    again = cached_embeddings("nsmc", "mecab", texts=reviews, cache_dir=tmp_path, progress=False, **SMALL)
    assert np.array_equal(first["영화"], again["영화"]) and len(list(tmp_path.iterdir())) == 1
    fasttext = cached_embeddings(
        "nsmc", "mecab", "fasttext", texts=reviews[:500], cache_dir=tmp_path, progress=False, **SMALL
    )
    assert fasttext["영화관람객들"].shape == (32,)  # built from n-grams though never seen
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(ValueError, match="unknown embedding kind 'glove'"):
        cached_embeddings("nsmc", "mecab", "glove", texts=reviews)


def test_key_changes_with_what_changes_the_vectors() -> None:
    spec = {"corpus": "nsmc", "tokenizer": {"name": "kiwi"}, "kind": "word2vec", "params": {"epochs": 5}}
    base = embeddings_key(spec, ["가", "나"])
    assert base == embeddings_key(dict(spec), ["가", "나"])
    assert base != embeddings_key(spec, ["가", "다"])
    assert base != embeddings_key({**spec, "params": {"epochs": 6}}, ["가", "나"])
    assert base != embeddings_key({**spec, "tokenizer": {"name": "okt"}}, ["가", "나"])


def test_nsml_cache_glue_runs_once(
    reviews: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The path taken inside a session, here through nsml.cache's local store."""
    monkeypatch.chdir(tmp_path)
    spec = {
        "corpus": "nsmc",
        "tokenizer": {"name": "char", "keep_space": True},
        "kind": "word2vec",
        "normalize": True,
        "params": {k: v for k, v in SMALL.items() if k != "workers"},
    }
    vectors = _via_nsml_cache(spec, reviews[:500], "k" * 64, None)
    assert "영" in vectors.key_to_index
    assert "cache miss" in capsys.readouterr().out
    again = _via_nsml_cache(spec, reviews[:500], "k" * 64, tmp_path / "elsewhere")
    assert "cache hit" in capsys.readouterr().out
    assert np.array_equal(vectors["영"], again["영"])


def test_cli_pretrain_and_ls(shared_data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "KORTEXT_HOME": str(tmp_path)}
    env.pop("NSML_ON_PLATFORM", None)
    corpus = str(shared_data / "nsmc" / "reviews.tsv.gz")
    args = ["--tokenizer", "char", "--limit", "800", "--vector-size", "16", "--epochs", "1", "--json"]
    cli = [sys.executable, "-m", "kortext"]
    done = subprocess.run([*cli, "pretrain", "--corpus-path", corpus, *args], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["vocabulary"] > 100
    listed = json.loads(subprocess.run([*cli, "ls", "--json"], env=env, capture_output=True, text=True,
                                       timeout=60, check=True).stdout)  # fmt: skip
    assert [(e["corpus"], e["kind"], e["sentences"]) for e in listed] == [("nsmc", "word2vec", 800)]
    bad = subprocess.run([*cli, "pretrain", "--corpus-path", str(tmp_path / "missing.tsv.gz")], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 1 and "NSMC reviews not found" in bad.stderr and "Traceback" not in bad.stderr
