"""Every mission model on every real dataset, scored the way a participant is scored.

Why this exists: a model's figure only counts when it comes from the platform's own
``nsml submit`` on the hidden test split (the script never sees the test labels), and
every neural model must be judged against the TF-IDF baselines trained the same way. For
each dataset × model this builds the dataset from ``../shared/data`` (``nsml dataset
build``), runs the mission (``nsml run``), then ``nsml submit SESSION best`` and records:

- score: the submit score on the test split's public part (accuracy or MSE);
- train s: the seconds ``fit`` took inside the session (as reported), and the session wall;
- inputs/s: test inputs / wall time of the whole ``nsml submit`` (sandbox start, imports,
  checkpoint load, inference, scoring), i.e. what a participant waits for; a lower bound on
  the model's own inference speed.

Run it as ``.venv/bin/python benchmarks/missions.py --datasets kin --models tfidf,esim``;
``--max-train`` and ``--epochs`` bound the time, the table is rewritten after each run, so a
run cut short keeps what it measured. Only 127.0.0.1 is contacted; the temporary NSML_HOME
is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _platform import cli, log  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
# dataset -> (builder source, mission folder, extra mission args, metric)
DATASETS: dict[str, tuple[str, str, str, str]] = {
    "kin": ("question_pair", "kin", "", "accuracy"),
    "movie_review": ("nsmc/reviews.tsv.gz", "movie_review", "--task regression", "mse"),
    "movie_phase1": ("nsmc/reviews.tsv.gz", "movie_review", "--task regression", "mse"),
    "movie_phase2": ("nsmc/reviews.tsv.gz", "movie_review", "--task regression", "mse"),
    "nsmc": ("nsmc/reviews.tsv.gz", "movie_review", "--task binary", "accuracy"),
}
PAIR_ONLY = ("siamese", "esim")
MODELS = ("tfidf", "mlp", "textcnn", "textcnn-static", "bigru", "bilstm", "siamese", "esim", "ensemble")


TARGETS = [
    "Reference and targets: a plain character 1-3-gram TF-IDF "
    "+ linear model measured on this machine gives kin 91.4% accuracy, movie_review MSE 4.54 on "
    "unseen movies, nsmc 87.1%. Predicting the training mean gives movie_review MSE 8.88 on "
    "this test split (the `training mean` row; the 8.75 quoted before does not match this split), "
    "and the majority class gives nsmc 50% (balanced). Targets without a pretrained language "
    "model: kin ≥ 95% (KoBERT 93.9%, XLM-RoBERTa-base 93.5%, HanBERT 94.2% on this test split), "
    "movie_review MSE ≤ 3.6, nsmc ≥ 90% (KoBERT 89.6%, KoELECTRA-base 90.2%). A run stopped for "
    "time is marked in the note column. TF-IDF ratings are mapped to the 1-10 scale by an isotonic "
    "fit on the validation split, so that row's valid column is measured on rows it was fitted on.",
]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="kin", help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument(
        "--models", default=",".join(MODELS),
        help="comma-separated mission --model values; MODEL+FLAG adds --FLAG (tfidf+cong)",
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-train", type=int, default=0, help="cap training rows (0: all); kin is small")
    parser.add_argument("--max-train-neural", type=int, default=0, help="a lower cap for neural models")
    parser.add_argument(
        "--large-models", default="tfidf,textcnn", help="models for the datasets other than kin"
    )
    parser.add_argument("--append", action="store_true", help="add to the rows of the last run (--out .json)")
    parser.add_argument("--args", default="", help="extra mission arguments for every run")
    parser.add_argument("--session-timeout", type=float, default=1800.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "missions.md"))
    parser.add_argument("--json", action="store_true", help="print all rows as JSON")
    parser.add_argument(
        "--references", action="store_true",
        help="only the training-mean / majority-class rows of --datasets (no server, no sessions)",
    )  # fmt: skip
    parser.add_argument(
        "--merge", nargs="+", default=[], help="only write --out from these earlier runs' JSON files"
    )
    config = parser.parse_args()
    for name in config.datasets.split(","):
        if name not in DATASETS:
            parser.error(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return config


def build(env: dict[str, str], name: str) -> int:
    source = DATA / DATASETS[name][0]
    if not source.exists():
        raise SystemExit(f"error: {source} is missing; clone the project beside shared/ (../shared/data)")
    log(f"building {name} from {source}")
    cli(env, "dataset", "build", name, "--source", str(source), timeout=600)
    cli(env, "dataset", "set", name, "--eval-timeout", "3600")  # large test splits on a small CPU
    rows = json.loads(cli(env, "dataset", "ls", "--json"))
    for row in rows:
        if row.get("name") == name:
            return int(row.get("test_size") or row.get("test_rows") or 0)
    return 0


def wait(env: dict[str, str], session: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in json.loads(cli(env, "ps", "-a", "--json")):
            if row["name"] == session and row["status"] in ("exited", "failed", "stopped"):
                return dict(row)
        time.sleep(2)
    cli(env, "stop", session)
    raise TimeoutError(f"{session} did not finish in {timeout:.0f} s")


def run_one(
    env: dict[str, str], config: argparse.Namespace, dataset: str, model: str, n_test: int
) -> dict[str, Any]:
    _, mission, task_args, metric = DATASETS[dataset]
    name, _, flag = model.partition("+")  # "tfidf+cong": the tfidf model with --cong
    cap = config.max_train_neural if name not in ("tfidf",) and config.max_train_neural else config.max_train
    extra = f"--{flag} {config.args}" if flag else config.args
    args = f"{task_args} --model {name} --epochs {config.epochs} --max-train {cap} {extra}".strip()
    row: dict[str, Any] = {"dataset": dataset, "model": model, "metric": metric, "args": args}
    log(f"{dataset} × {model}: nsml run -a '{args}'")
    started = time.monotonic()
    created = json.loads(
        cli(env, "run", "-d", dataset, "-e", "main.py", "-a", args, "--json", cwd=ROOT / "missions" / mission)
    )
    session = created["name"]
    row["session"] = session
    ended = wait(env, session, config.session_timeout)
    row["session_s"] = round(time.monotonic() - started, 1)
    summary = ended.get("summary") or {}
    if ended["status"] != "exited":
        row["error"] = f"session {ended['status']}: " + cli(env, "logs", session)[-400:].replace("\n", " ")
        return row
    row["train_s"] = round(float(summary.get("train/seconds", 0.0)), 1)
    row["train_rows"] = int(summary.get("train/rows", 0))
    row["valid"] = summary.get(f"valid/{metric}")
    began = time.monotonic()
    try:
        out = cli(env, "submit", session, "best", "-b", "500", timeout=1800)
    except RuntimeError as exc:
        row["error"] = str(exc)[-400:]
        return row
    row["submit_s"] = round(time.monotonic() - began, 1)
    found = re.search(r"score ([0-9.eE+-]+)", out)
    row["score"] = float(found.group(1)) if found else None
    row["inputs_per_s"] = round(n_test / row["submit_s"]) if n_test and row["submit_s"] else None
    log(f"  -> {metric} {row['score']}, train {row['train_s']} s, submit {row['submit_s']} s")
    return row


def reveal(env: dict[str, str], dataset: str, rows: list[dict[str, Any]], n_test: int) -> None:
    """Closes the competition so the private part is scored, then adds the whole-test-split score."""
    from nsml.evaluation.split import split_indices

    cli(env, "dataset", "close", dataset)
    public, private = split_indices(dataset, n_test, 0.5)
    board = json.loads(cli(env, "board", dataset, "--private", "--json"))
    for submission in board["submissions"]:
        for row in rows:
            name = str(row.get("session", "\0"))
            if row["dataset"] == dataset and submission["session_name"].endswith(name):
                pub, priv = submission["public_score"], submission["private_score"]
                if pub is not None and priv is not None:
                    row["private"] = priv
                    row["full"] = (pub * len(public) + priv * len(private)) / n_test


def reference(dataset: str, folder: Path) -> dict[str, Any]:
    """What a model that ignores the text scores on this dataset's own test split: the training
    mean (MSE) or the training majority class (accuracy), public and private halves as submitted."""
    from nsml.evaluation.split import split_indices

    metric = DATASETS[dataset][3]

    def labels(path: str) -> np.ndarray:
        return np.loadtxt(folder / path, dtype=np.float64, ndmin=1)

    train, test = labels("train/train_label"), labels("test/test_label")
    guess = train.mean() if metric == "mse" else float(train.mean() >= 0.5)
    per_row = (test - guess) ** 2 if metric == "mse" else (test == guess).astype(np.float64)
    public, private = (list(part) for part in split_indices(dataset, len(test), 0.5))
    name = "training mean" if metric == "mse" else "majority class"
    return {
        "dataset": dataset, "model": name, "metric": metric, "args": f"predict {guess:.4f} for every input",
        "score": float(per_row[public].mean()), "private": float(per_row[private].mean()),
        "full": float(per_row.mean()), "train_rows": len(train),
    }  # fmt: skip


def references(datasets: list[str]) -> list[dict[str, Any]]:
    """The reference rows, building each dataset with the platform's own builder and seed."""
    from nsml.datasets.builders.base import BuildContext
    from nsml.datasets.builders.registry import get_builder

    rows = []
    for dataset in datasets:
        with tempfile.TemporaryDirectory(prefix="nsml-reference-") as scratch:
            out = Path(scratch) / dataset
            context = BuildContext(str(DATA / DATASETS[dataset][0]), out, Path(scratch) / "cache")
            get_builder(dataset).run(context)
            rows.append(reference(dataset, out))
            log(f"{dataset}: {rows[-1]['model']} {rows[-1]['metric']} {rows[-1]['full']:.4f}")
    return rows


def held_out_gaps(rows: list[dict[str, Any]]) -> list[str]:
    """movie_review's test movies are never trained on, its validation reviews' movies are:
    the difference says what unseen movies cost each model."""
    lines = []
    for r in rows:
        if r["dataset"].startswith("movie") and isinstance(r.get("full"), float) and r.get("valid"):
            gap = r["full"] - float(r["valid"])
            lines.append(
                f"{r['dataset']} {r['model']}: {r['full']:.3f} − {float(r['valid']):.3f} = {gap:+.3f}"
            )
    if not lines:
        return []
    return [
        "",
        "Held-out-movie test MSE minus validation MSE (movies seen in training): " + "; ".join(lines) + ".",
    ]


def note(row: dict[str, Any]) -> str:
    """The row's own note (caps, why it is missing), then what went wrong."""
    error = str(row.get("error", ""))
    if error.startswith("session stopped") or "did not finish in" in error:
        error = "stopped: did not fit this run's time budget"
    return "; ".join(part for part in (str(row.get("note", "")), error[:120]) if part).replace("|", "/")


def table(rows: list[dict[str, Any]], config: argparse.Namespace) -> str:
    lines = [
        "# Mission results",
        "",
        "Produced by `benchmarks/missions.py` (each row's mission arguments are in the JSON beside this "
        "file, caps on training rows included) on a 2-core CPU "
        "machine shared with other work; no pretrained language model anywhere (`--cong` rows: Kiwi's "
        "CoNG, see below). Score: `nsml submit` on "
        "the public half of the hidden test split (accuracy ↑ or MSE ↓); private: the other half, "
        "revealed by closing the competition; test: the whole test split. Valid: the mission's own "
        "validation split of train. Train s: `fit` inside the session. Inputs/s: test inputs divided by "
        "the whole `nsml submit` wall time (sandbox start, checkpoint load, inference, scoring).",
        "",
        "| dataset | model | metric | test | public | private | valid | train rows | train s | session s "
        "| inputs/s | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        score, private, full, valid = (
            f"{r[key]:.4f}" if isinstance(r.get(key), (int, float)) else "-"
            for key in ("score", "private", "full", "valid")
        )
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['metric']} | **{full}** | {score} | {private} | {valid} "
            f"| {r.get('train_rows', '-')} | {r.get('train_s', '-')} "
            f"| {r.get('session_s', '-')} | {r.get('inputs_per_s', '-')} "
            f"| {note(r)} |"
        )
    lines += [*held_out_gaps(rows), "", *TARGETS]
    return "\n".join(lines) + "\n"


def main() -> None:
    config = arguments()
    if config.references:
        found = references(config.datasets.split(","))
        Path(config.out).with_suffix(".json").write_text(json.dumps(found, indent=1), encoding="utf-8")
        sys.stdout.write(table(found, config))
        return
    if config.merge:
        merged = [row for path in config.merge for row in json.loads(Path(path).read_text())]
        Path(config.out).write_text(table(merged, config), encoding="utf-8")
        Path(config.out).with_suffix(".json").write_text(json.dumps(merged, indent=1), encoding="utf-8")
        sys.stdout.write(table(merged, config))
        return
    home = Path(tempfile.mkdtemp(prefix="nsml-missions-"))
    env = {**os.environ, "NSML_HOME": str(home), "NSML_DEFAULT_DAILY_LIMIT": "0"}  # many submits
    for key in ("NSML_SERVER_URL", "NSML_TOKEN"):
        env.pop(key, None)
    sidecar = Path(config.out).with_suffix(".json")
    rows: list[dict[str, Any]] = (
        json.loads(sidecar.read_text()) if config.append and sidecar.is_file() else []
    )
    try:
        for dataset in config.datasets.split(","):
            n_test = build(env, dataset)
            rows.append(reference(dataset, home / "datasets" / dataset))
            models = config.models if dataset == "kin" else config.large_models
            for model in models.split(","):
                if model in PAIR_ONLY and dataset != "kin":
                    continue
                try:
                    rows.append(run_one(env, config, dataset, model, n_test))
                except (RuntimeError, TimeoutError) as exc:
                    rows.append(
                        {
                            "dataset": dataset,
                            "model": model,
                            "metric": DATASETS[dataset][3],
                            "error": str(exc),
                        }
                    )
                Path(config.out).write_text(table(rows, config), encoding="utf-8")
                sidecar.write_text(json.dumps(rows, indent=1), encoding="utf-8")
            reveal(env, dataset, rows, n_test)
            Path(config.out).write_text(table(rows, config), encoding="utf-8")
            sidecar.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    finally:
        try:
            cli(env, "server", "stop", "-y")
        except RuntimeError as exc:
            log(f"server stop: {exc}")
        shutil.rmtree(home, ignore_errors=True)
    if config.json:
        print(json.dumps(rows, indent=2))
    else:
        sys.stdout.write(table(rows, config))


if __name__ == "__main__":
    main()
