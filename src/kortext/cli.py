"""``python -m kortext``: pre-train embeddings into the shared cache, list it, tokenize text.

Kept apart from the ``nsml`` command on purpose: kortext works without the platform.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import click

from kortext.embeddings import INFO_FILE, KINDS, cached_embeddings, home, save_for_mmap
from kortext.tokenizers import NAMES, TokenizerUnavailable, get_tokenizer


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@click.group()
def main() -> None:
    """Korean text tools of OpenNSML."""


@main.command()
@click.option("--corpus", default="nsmc", show_default=True, help="Built-in corpus to train on.")
@click.option("--corpus-path", type=click.Path(dir_okay=False, path_type=Path), help="reviews.tsv.gz")
@click.option("--tokenizer", type=click.Choice([n for n in NAMES if n != "sentencepiece"]), default="kiwi")
@click.option("--kind", type=click.Choice(KINDS), default="word2vec", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N reviews (default: all).")
@click.option("--vector-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--window", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--min-count", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: $KORTEXT_HOME.")
@click.option("--publish", "publish_as", metavar="NAME", help="Also publish them as shared resource NAME.")
@click.option("--replace", is_flag=True, help="With --publish: replace an existing NAME.")
@click.option("--description", default="", help="With --publish: one line for `nsml shared ls`.")
@click.option("--json", "as_json", is_flag=True)
def pretrain(
    corpus: str,
    corpus_path: Path | None,
    tokenizer: str,
    kind: str,
    limit: int | None,
    vector_size: int,
    window: int,
    min_count: int,
    epochs: int,
    cache_dir: Path | None,
    publish_as: str | None,
    replace: bool,
    description: str,
    as_json: bool,
) -> None:
    """Train embeddings once; later cached_embeddings(...) calls with the same settings load them.

    With --publish NAME they also become a platform shared resource that every session
    loads with kortext.embeddings.pretrained(NAME).
    """
    try:
        vectors = cached_embeddings(
            corpus, tokenizer, kind, corpus_path=corpus_path, limit=limit, cache_dir=cache_dir,
            vector_size=vector_size, window=window, min_count=min_count, epochs=epochs,
        )  # fmt: skip
    except (FileNotFoundError, ValueError, TokenizerUnavailable) as error:
        _fail(str(error))
    entry: dict[str, Any] = {
        "corpus": corpus, "tokenizer": tokenizer, "kind": kind, "vocabulary": len(vectors.index_to_key),
    }  # fmt: skip
    if publish_as:
        text = description or (
            f"{kind} {corpus} ({tokenizer}) dim={vector_size} words={entry['vocabulary']}"
            + (f" reviews={limit}" if limit else "")
        )
        entry["published"] = publish_vectors(vectors, publish_as, text, replace, entry)
    if as_json:
        _print_json(entry)
    elif publish_as:
        click.echo(f"{kind} vectors for {corpus} ({tokenizer}): {entry['vocabulary']} words, "
                   f"published as shared resource {publish_as}.")  # fmt: skip
    else:
        click.echo(f"{kind} vectors for {corpus} ({tokenizer}): {entry['vocabulary']} words, cached.")


def publish_vectors(vectors: Any, name: str, description: str, replace: bool, info: dict[str, Any]) -> Any:
    """Save the vectors for memory-mapping and publish them through the platform's client.

    The platform is imported here, only when publishing: the rest of kortext runs without it.
    """
    try:
        from nsml.client.publish import PublishFailed, publish_folder
    except ImportError:
        _fail("--publish needs the OpenNSML platform installed (pip install opennsml)")
    from rich.console import Console

    spinner = Console(stderr=True).status  # the spinners of `nsml shared push`, off stdout
    with tempfile.TemporaryDirectory(prefix="kortext-publish-") as scratch:
        save_for_mmap(vectors, scratch)
        (Path(scratch) / INFO_FILE).write_text(
            json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        try:
            return publish_folder(name, Path(scratch), description, replace, status=spinner)
        except PublishFailed as error:
            _fail(str(error))


@main.command("ls")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: $KORTEXT_HOME.")
@click.option("--json", "as_json", is_flag=True)
def list_embeddings(cache_dir: Path | None, as_json: bool) -> None:
    """The cached embeddings: corpus, tokenizer, kind, size."""
    folder = cache_dir or home() / "embeddings"
    entries = []
    for info in sorted(folder.glob(f"*/{INFO_FILE}")):
        data = json.loads(info.read_text(encoding="utf-8"))
        entries.append({**data, "path": str(info.parent)})
    if as_json:
        _print_json(entries)
        return
    if not entries:
        click.echo(f"No embeddings in {folder}; create some with `python -m kortext pretrain`.")
    for e in entries:
        params = e["params"]
        click.echo(
            f"{e['key'][:12]}  {e['corpus']:<8} {e['tokenizer']['name']:<6} {e['kind']:<9} "
            f"dim={params['vector_size']} words={e['vocabulary']} sentences={e['sentences']}"
        )


@main.command()
@click.argument("text", nargs=-1)
@click.option("--tokenizer", type=click.Choice([n for n in NAMES if n != "sentencepiece"]), default="kiwi")
@click.option("--json", "as_json", is_flag=True)
def tokenize(text: tuple[str, ...], tokenizer: str, as_json: bool) -> None:
    """Tokenize the arguments (or stdin, one text a line)."""
    texts = list(text) or sys.stdin.read().splitlines()
    try:
        results = get_tokenizer(tokenizer).tokenize_batch(texts)
    except TokenizerUnavailable as error:
        _fail(str(error))
    if as_json:
        _print_json(results)
    else:
        for tokens in results:
            click.echo(" ".join(tokens))
