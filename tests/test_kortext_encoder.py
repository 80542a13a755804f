"""kortext's pretrained encoder: masked-LM pretraining learns and resumes, fine-tuning from it
beats random initialisation, and a mission fine-tunes a published one on the platform."""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import kortext.encoder.pretrain as pretraining
import kortext.pipeline.encoder as encoder_pipeline
from conftest import Platform
from kortext.cli import ENCODER_SIZES, main
from kortext.encoder import load_encoder
from kortext.encoder.model import CLS_ID, SEP_ID, join_pair
from kortext.encoder.pretrain import SIZES, PretrainSettings, pretrain_texts
from kortext.pipeline import Options, Pipeline, make_pipeline
from kortext.tokenizers import get_tokenizer
from nsml.client.http import ApiError

torch.set_num_threads(1)  # tiny models: one thread avoids contention on small CPUs
MISSIONS = Path(__file__).resolve().parent.parent / "missions"

# Two topics, each written with its own 16 syllables among common particles: a masked
# syllable is predictable only from its sentence's topic, so pretraining has to learn which
# syllables go together. Fine-tuning then sees a few sentences using 5 syllables of each topic
# and is tested on sentences written with the other 11, which it never saw labelled.
TOPICS = ["".join(chr(0xAC00 + 28 * (i + 16 * t)) for i in range(16)) for t in range(2)]
PARTICLES = "은는이가을를의에"


def _sentence(rng: random.Random, syllables: str) -> str:
    return "".join(rng.choice(syllables) if rng.random() < 0.7 else rng.choice(PARTICLES) for _ in range(12))


def _labelled(rng: random.Random, part: slice, count: int) -> tuple[list[str], list[float]]:
    rows = [(_sentence(rng, TOPICS[t][part]), float(t)) for t in (0, 1) for _ in range(count)]
    rng.shuffle(rows)
    return [x for x, _ in rows], [y for _, y in rows]


TINY = PretrainSettings(size="tiny", steps=200, batch_size=32, lr=3e-3, max_length=20, min_count=1)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    rng = random.Random(0)
    corpus = [_sentence(rng, TOPICS[t]) for t in (0, 1) for _ in range(1000)]
    rng.shuffle(corpus)
    folder = tmp_path_factory.mktemp("encoder")
    info = {"tokenizer": {"name": "char"}}
    summary = pretrain_texts(corpus, [], get_tokenizer("char"), TINY, folder, progress=False, info=info)
    return folder, summary


def test_pretraining_lowers_the_masked_lm_loss_and_saves_the_encoder(
    encoder: tuple[Path, dict[str, Any]],
) -> None:
    folder, summary = encoder
    assert summary["steps"] == 200 and summary["losses"][-1] < summary["losses"][0] - 0.2, summary["losses"]
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.pt", "info.json", "vocab.json"]
    loaded = load_encoder(folder)
    assert loaded.tokenizer == "char" and loaded.config.dim == SIZES["tiny"]["dim"]
    assert loaded.vocab.itos[:5] == ["<pad>", "<unk>", "<cls>", "<sep>", "<mask>"]
    assert set(ENCODER_SIZES) == set(SIZES)  # the command names them without importing torch


def test_fine_tuning_the_pretrained_encoder_beats_random_initialisation(
    encoder: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(1)
    train_x, train_y = _labelled(rng, slice(0, 5), 20)
    test_x, test_y = _labelled(rng, slice(5, None), 100)
    options = Options(epochs=10, lr=1e-3, batch_size=8, max_length=20, progress=False, patience=100)
    accuracy = {}
    for pretrained in (str(encoder[0]), "none"):
        chosen = Options(**{**vars(options), "pretrained": pretrained, "encoder_size": "tiny"})
        pipeline = make_pipeline("encoder", "binary", False, chosen)
        pipeline.fit(train_x, train_y)
        accuracy[pretrained] = float(((pipeline.predict(test_x) > 0.5) == np.array(test_y)).mean())
        if pretrained != "none":
            pipeline.save(tmp_path)  # the checkpoint needs no pretrained files to predict
            assert np.allclose(Pipeline.load(tmp_path).predict(test_x[:10]), pipeline.predict(test_x[:10]))
    assert accuracy[str(encoder[0])] >= 0.9 and accuracy["none"] <= 0.65, accuracy
    log = capsys.readouterr().out
    assert f"encoder: fine-tuning pretrained encoder {str(encoder[0])!r} (tiny, 200 steps" in log
    assert "encoder: --pretrained none: training from random initialisation" in log


def test_a_missing_pretrained_encoder_is_random_init_by_default_and_an_error_when_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no nsml_local/shared/kortext-encoder here
    monkeypatch.delenv("NSML_ON_PLATFORM", raising=False)
    lines, labels = _labelled(random.Random(2), slice(None), 6)
    options = Options(epochs=1, max_length=20, progress=False, encoder_size="tiny")
    make_pipeline("encoder", "binary", False, options).fit(lines, labels)
    assert "no pretrained encoder 'kortext-encoder' published" in capsys.readouterr().out
    named = make_pipeline("encoder", "binary", False, Options(**{**vars(options), "pretrained": "mine"}))
    with pytest.raises(ValueError, match="cannot load pretrained encoder 'mine': .*nsml shared pull mine"):
        named.fit(lines, labels)

    def on_the_platform(status: int) -> Any:  # nsml.shared in a session: the server's answer
        def fetch(name: str) -> Any:
            raise ApiError(status, f"shared resource {name!r} answered {status}")

        return fetch

    monkeypatch.setattr(encoder_pipeline, "pretrained_encoder", on_the_platform(404))
    make_pipeline("encoder", "binary", False, options).fit(lines, labels)
    assert "training from random initialisation" in capsys.readouterr().out
    monkeypatch.setattr(encoder_pipeline, "pretrained_encoder", on_the_platform(503))
    with pytest.raises(ValueError, match="cannot load pretrained encoder 'kortext-encoder': .* answered 503"):
        make_pipeline("encoder", "binary", False, options).fit(lines, labels)


def test_a_stopped_pretraining_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = [_sentence(random.Random(i), TOPICS[i % 2]) for i in range(64)]
    settings = PretrainSettings(size="tiny", steps=8, batch_size=8, max_length=20, min_count=1,
                                checkpoint_minutes=0)  # fmt: skip
    real_mask, calls = pretraining.mask_tokens, []

    def stop_at_the_sixth_step(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_mask(*args)

    monkeypatch.setattr(pretraining, "mask_tokens", stop_at_the_sixth_step)
    with pytest.raises(KeyboardInterrupt):
        pretrain_texts(texts, [], get_tokenizer("char"), settings, tmp_path, progress=False)
    assert (tmp_path / "resume.pt").is_file() and not (tmp_path / "encoder.pt").exists()
    monkeypatch.setattr(pretraining, "mask_tokens", real_mask)
    summary = pretrain_texts(texts, [], get_tokenizer("char"), settings, tmp_path, progress=False)
    assert summary["resumed"] and summary["steps"] == 8 and not (tmp_path / "resume.pt").exists()
    assert "resuming at step 5" in capsys.readouterr().err
    (tmp_path / "resume.pt").write_bytes(
        (tmp_path / "encoder.pt").read_bytes()
    )  # not a checkpoint of these settings
    other = pretrain_texts(texts, [], get_tokenizer("char"), settings, tmp_path, progress=False)
    assert not other["resumed"] and other["steps"] == 8


def test_pairs_are_joined_without_padding_between_the_questions() -> None:
    first = torch.tensor([[7, 8, 0], [9, 0, 0]])
    second = torch.tensor([[10, 0], [11, 0]])
    ids, segments = join_pair(first, second)
    assert ids.tolist() == [[CLS_ID, 7, 8, SEP_ID, 10], [CLS_ID, 9, SEP_ID, 11, 0]]
    assert segments.tolist() == [[0, 0, 0, 0, 1], [0, 0, 0, 1, 1]]


def test_the_command_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["pretrain", "--kind", "mlm", "--size", "tiny", "--output", str(tmp_path / "out")]
    cases = [
        (["--device", "cuda"] if not torch.cuda.is_available() else [], "no CUDA GPU is visible"),
        (["--corpus-path", str(tmp_path / "missing.tsv.gz")], "NSMC reviews not found"),
        (["--corpus", "wiki"], "--kind mlm pretrains on NSMC reviews and kin questions"),
    ]
    for extra, message in cases:
        if not extra:
            continue
        result = runner.invoke(main, [*base, *extra])
        assert result.exit_code == 1 and message in result.output and len(result.output.splitlines()) == 1


def _tiny_reviews(path: Path, shared: list[str]) -> Path:
    rows = [
        "review_id\tmovie_id\tdate\trating\treview",
        *[f"{i}\t1\t2018\t5\t{t}" for i, t in enumerate(shared)],
    ]
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    return path


def test_a_mission_fine_tunes_the_published_encoder_on_the_platform(
    platform: Platform, tmp_path: Path
) -> None:
    demo = Path(__file__).resolve().parent.parent / "src" / "nsml" / "datasets" / "demo"
    questions = (demo / "demo_kin" / "train" / "train_data").read_text(encoding="utf-8").splitlines()
    reviews = _tiny_reviews(tmp_path / "reviews.tsv.gz", [q.replace("\t", " ") for q in questions])
    kin = tmp_path / "kin"
    kin.mkdir()
    (kin / "train.txt").write_text(
        "question1\tquestion2\tis_duplicate\n" + "\n".join(f"{q}\t0" for q in questions[:50])
    )
    platform.nsml("ps")  # the embedded server is up before publishing to it
    command = [
        "pretrain", "--kind", "mlm", "--size", "tiny", "--steps", "20", "--corpus-path", str(reviews),
        "--kin-path", str(kin), "--output", str(tmp_path / "encoder"), "--publish", "kortext-encoder",
    ]  # fmt: skip
    env = {"NSML_HOME": str(platform.home), "NSML_SERVER_URL": None, "NSML_TOKEN": None}
    done = CliRunner().invoke(main, command, env=env)  # in this process: no second torch start-up
    assert done.exit_code == 0, done.output
    assert "published as shared resource kortext-encoder" in done.output
    listed = {r["name"]: r for r in platform.json("shared", "ls")}["kortext-encoder"]
    assert "mlm encoder tiny (char): 20 steps" in listed["description"] and listed["files"] == 3

    args = "--model encoder --epochs 1 --max-length 30 --max-train 60"
    started = platform.json("run", "-d", "demo_kin", "-e", "main.py", "-a", args, cwd=MISSIONS / "kin")
    session = started["name"]
    ended = platform.wait(session, timeout=120)
    log = platform.nsml("logs", session).stdout
    assert ended["status"] == "exited", log
    assert "encoder: fine-tuning pretrained encoder 'kortext-encoder' (tiny, 20 steps" in log
    assert [c["name"] for c in platform.json("model", "ls", session)] == ["best"]
