"""``python -m kortext``: pre-train embeddings into the shared cache, list it, tokenize text.

Kept apart from the ``nsml`` command on purpose: kortext works without the platform.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import click

from kortext.embeddings import INFO_FILE, KINDS, cached_embeddings, home, save_for_mmap
from kortext.tokenizers import NAMES, TokenizerUnavailable, get_tokenizer

ENCODER_SIZES = ("tiny", "small", "base")  # kortext.encoder.pretrain.SIZES, named without importing torch


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
@click.option("--tokenizer", type=click.Choice([n for n in NAMES if n != "sentencepiece"]),
              help="Default: kiwi for word vectors, char for mlm.")  # fmt: skip
@click.option("--kind", type=click.Choice((*KINDS, "mlm")), default="word2vec", show_default=True,
              help="mlm: a transformer encoder (masked language model) for --model encoder.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N reviews (default: all).")
@click.option("--vector-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--window", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--min-count", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: $KORTEXT_HOME.")
@click.option("--kin-path", type=click.Path(file_okay=False, path_type=Path), help="mlm: question_pair dir")
@click.option("--size", type=click.Choice(ENCODER_SIZES), default="small", show_default=True,
              help="mlm: small for a CPU, base for a GPU, tiny for tests.")  # fmt: skip
@click.option("--steps", type=click.IntRange(min=1), help="mlm: optimizer steps (default: the size's).")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=90.0, show_default=True,
              help="mlm: stop, annealed, after this much training time.")  # fmt: skip
@click.option("--batch", type=click.IntRange(min=1), help="mlm: texts per step (default: the size's).")
@click.option("--device", default="cpu", show_default=True, help="mlm: cpu, cuda or cuda:N.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="mlm: folder to train into and resume from (default: under $KORTEXT_HOME).")  # fmt: skip
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
    kin_path: Path | None,
    size: str,
    steps: int | None,
    minutes: float,
    batch: int | None,
    device: str,
    output: Path | None,
    publish_as: str | None,
    replace: bool,
    description: str,
    as_json: bool,
) -> None:
    """Train embeddings once; later cached_embeddings(...) calls with the same settings load them.

    With --publish NAME they also become a platform shared resource that every session
    loads with kortext.embeddings.pretrained(NAME). --kind mlm pretrains a transformer encoder
    instead, which the missions fine-tune with --model encoder.
    """
    if kind == "mlm":
        from kortext.encoder.pretrain import PretrainSettings

        if corpus != "nsmc":
            _fail(f"--kind mlm pretrains on NSMC reviews and kin questions; --corpus {corpus} is not one")

        settings = PretrainSettings(size=size, steps=steps or 0, minutes=minutes, batch_size=batch or 0,
                                    device=device)  # fmt: skip
        pretrain_encoder(settings, tokenizer or "char", corpus_path, kin_path, limit, output, publish_as,
                         replace, description, as_json)  # fmt: skip
        return
    tokenizer = tokenizer or "kiwi"
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


def pretrain_encoder(
    settings: Any, tokenizer: str, corpus_path: Path | None, kin_path: Path | None,
    limit: int | None, output: Path | None, publish_as: str | None, replace: bool, description: str,
    as_json: bool,
) -> None:  # fmt: skip
    from kortext.encoder.command import default_folder, run_mlm

    folder = output or default_folder(home(), settings, tokenizer)
    try:
        entry = run_mlm(settings, tokenizer, corpus_path, kin_path, limit, folder)
    except (FileNotFoundError, ValueError, TokenizerUnavailable) as error:
        _fail(str(error))
    shown = (f"mlm encoder {entry['size']} ({tokenizer}): {entry['steps']} steps in {entry['minutes']} min, "
             f"loss {entry['first_loss']:.3f} -> {entry['last_loss']:.3f}")  # fmt: skip
    if publish_as:
        from kortext.encoder.pretrain import PUBLISHED_FILES

        text = description or f"{shown}, {entry['texts']} reviews + {entry['pairs']} kin pairs"
        with tempfile.TemporaryDirectory(prefix="kortext-publish-") as scratch:  # only the encoder's files
            for name in PUBLISHED_FILES:
                shutil.copyfile(folder / name, Path(scratch) / name)
            entry["published"] = _publish(Path(scratch), publish_as, text, replace)
    if as_json:
        _print_json(entry)
    else:
        where = f"published as shared resource {publish_as}" if publish_as else f"saved in {folder}"
        click.echo(f"{shown}; {where}.")


def publish_vectors(vectors: Any, name: str, description: str, replace: bool, info: dict[str, Any]) -> Any:
    """Save the vectors for memory-mapping and publish them."""
    with tempfile.TemporaryDirectory(prefix="kortext-publish-") as scratch:
        save_for_mmap(vectors, scratch)
        (Path(scratch) / INFO_FILE).write_text(
            json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        return _publish(Path(scratch), name, description, replace)


def _publish(folder: Path, name: str, description: str, replace: bool) -> Any:
    """Publish a folder through the platform's client.

    The platform is imported here, only when publishing: the rest of kortext runs without it.
    """
    try:
        from nsml.client.publish import PublishFailed, publish_folder
    except ImportError:
        _fail("--publish needs the OpenNSML platform installed (pip install opennsml)")
    from rich.console import Console

    spinner = Console(stderr=True).status  # the spinners of `nsml shared push`, off stdout
    try:
        return publish_folder(name, folder, description, replace, status=spinner)
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
