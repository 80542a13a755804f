"""How fast does each kortext tokenizer get through real NSMC reviews?

Why this exists: tokenizing is the first cost of every Korean mission, and the choice of
backend (Kiwi, Okt on a JVM, MeCab-ko, plain jamo/characters, sentencepiece) trades
quality for time. This samples ``--reviews`` reviews (seeded) from
``../shared/data/nsmc/reviews.tsv.gz``, trains sentencepiece on other reviews (the
training split stand-in), then times for each tokenizer: loading (first call), one process
(``workers=1``) and a batch over all cores (``tokenize_batch``), in characters and reviews
per second, and checks that the batch gives the same tokens as one by one. It prints a
table and writes ``benchmarks/tokenizers.md``.

Run ``.venv/bin/python benchmarks/tokenizers.py`` (``--reviews 100000`` for more,
``--only kiwi,mecab``, ``--json`` for one object). Needs ``pip install -e .[korean]`` and
Java for Okt. Figures depend on the machine and on what else runs on it: the load average
is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kortext.corpora import find_nsmc, nsmc_reviews
from kortext.normalize import normalize
from kortext.tokenizers import NAMES, SentencePieceTokenizer, Tokenizer, default_workers, get_tokenizer

HERE = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def split(path: Path | None, sample: int, train: int, seed: int) -> tuple[list[str], list[str]]:
    """A seeded sample to time, and disjoint reviews to train sentencepiece on."""
    reviews = [normalize(r) for r in nsmc_reviews(path)]
    order = list(range(len(reviews)))
    random.Random(seed).shuffle(order)
    if sample + train > len(order):
        raise SystemExit(f"error: --reviews {sample} + --spm-train {train} exceeds the {len(order)} reviews")
    return [reviews[i] for i in order[:sample]], [reviews[i] for i in order[sample : sample + train]]


def measure(tok: Tokenizer, texts: list[str], workers: int) -> dict[str, Any]:
    chars = sum(len(t) for t in texts)
    start = time.perf_counter()
    tok.tokenize("영화 재밌다")  # loads the backend
    load_s = time.perf_counter() - start
    for text in texts[:300]:  # warm-up (the JVM compiles Okt's hot paths), so order does not favour batch
        tok.tokenize(text)
    start = time.perf_counter()
    single = [tok.tokenize(t) for t in texts]
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    batch = tok.tokenize_batch(texts, workers=workers)
    batch_s = time.perf_counter() - start
    return {
        "tokenizer": tok.name,
        "load_s": round(load_s, 2),
        "single_s": round(single_s, 2),
        "single_chars_per_s": round(chars / single_s),
        "single_reviews_per_s": round(len(texts) / single_s),
        "batch_s": round(batch_s, 2),
        "batch_chars_per_s": round(chars / batch_s),
        "batch_reviews_per_s": round(len(texts) / batch_s),
        "tokens_per_review": round(sum(map(len, single)) / len(texts), 1),
        "batch_equals_single": batch == single,
    }


COLUMNS = [
    ("tokenizer", "Tokenizer"),
    ("load_s", "Load (s)"),
    ("single_chars_per_s", "1 process chars/s"),
    ("single_reviews_per_s", "1 process reviews/s"),
    ("batch_chars_per_s", "Batch chars/s"),
    ("batch_reviews_per_s", "Batch reviews/s"),
    ("tokens_per_review", "Tokens/review"),
    ("batch_equals_single", "Batch = 1 by 1"),
]


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Tokenizer throughput on NSMC reviews",
        "",
        f"{meta['reviews']} reviews sampled with seed {meta['seed']} from `nsmc/reviews.tsv.gz`, "
        f"normalised (`kortext.normalize`), {meta['chars']} characters (mean {meta['mean_chars']:.1f}). "
        f"Batch = `tokenize_batch(workers={meta['workers']})`. Sentencepiece: unigram, "
        f"{meta['spm_vocab']} pieces, trained on {meta['spm_train']} other reviews "
        f"in {meta['spm_train_s']} s.",
        "",
        f"Machine: {meta['cpus']} CPUs ({meta['machine']}), Python {meta['python']}, load average "
        f"{meta['load_before']} before / {meta['load_after']} after (other work was running; "
        "compare rows with each other rather than across machines).",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = [f"{row[key]:,}" if isinstance(row[key], int) and not isinstance(row[key], bool) else
                 str(row[key]) for key, _ in COLUMNS]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Load = first call (model or JVM start). Rows are timed one after another in one process; "
        "on this busy 2-core machine batching could not beat one process (Kiwi's threads and the "
        "pools compete with the other work for the same two cores).",
        "",
        "Reproduce: `.venv/bin/python benchmarks/tokenizers.py --reviews " + f"{meta['reviews']}`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=20000, help="reviews to time (default 20000)")
    parser.add_argument("--corpus-path", type=Path, help="reviews.tsv.gz (default ../shared/data/nsmc)")
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated tokenizers")
    parser.add_argument("--workers", type=int, default=default_workers(), help="batch workers (default: all)")
    parser.add_argument("--spm-train", type=int, default=50000, help="reviews to train sentencepiece on")
    parser.add_argument("--spm-vocab", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "tokenizers.md")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(NAMES))
    if unknown or args.reviews < 1 or args.workers < 1:
        raise SystemExit(f"error: --only takes {', '.join(NAMES)}; --reviews and --workers must be >= 1")
    try:
        path = find_nsmc(args.corpus_path)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}") from None
    load_before = round(os.getloadavg()[0], 2)
    log(f"reading {path} ...")
    texts, spm_texts = split(path, args.reviews, args.spm_train if "sentencepiece" in names else 0, args.seed)
    chars = sum(map(len, texts))
    meta: dict[str, Any] = {
        "reviews": len(texts), "chars": chars, "mean_chars": chars / len(texts), "seed": args.seed,
        "workers": args.workers, "spm_vocab": args.spm_vocab, "spm_train": len(spm_texts),
        "spm_train_s": None,
        "cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
        "load_before": load_before,
    }  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="kortext-bench-") as scratch:
        for name in names:
            if name == "sentencepiece":
                log(f"training sentencepiece on {len(spm_texts)} reviews ...")
                start = time.perf_counter()
                tok: Tokenizer = SentencePieceTokenizer.train(spm_texts, args.spm_vocab, scratch)
                meta["spm_train_s"] = round(time.perf_counter() - start, 1)
            else:
                tok = get_tokenizer(name)
            log(f"timing {name} ...")
            rows.append(measure(tok, texts, args.workers))
            log(f"  {rows[-1]}")
    meta["load_after"] = round(os.getloadavg()[0], 2)
    report = markdown(rows, meta)
    args.out.write_text(report, encoding="utf-8")
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, ensure_ascii=False, indent=2))
    else:
        print(report)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
