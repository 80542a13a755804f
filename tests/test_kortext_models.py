"""kortext models: each one learns (its loss goes down) on a tiny real dataset, and a trained
pipeline survives save → load with the very same predictions (what a submission relies on)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kortext.models import ESIM, CharMLP, RNNClassifier, RNNEncoder, SiameseClassifier, TextCNN
from kortext.models.ensemble import AveragingEnsemble, Stacker, average
from kortext.models.linear import TfidfLinear, TfidfPairClassifier, similarity_features
from kortext.pipeline import MODELS, Options, Pipeline, make_pipeline
from kortext.training import TrainConfig, fit, loss_function, predict
from kortext.vocab import Vocab, pad_batch

torch.set_num_threads(1)  # tiny models: one thread avoids contention on small CPUs
DEMO = Path(__file__).resolve().parent.parent / "src" / "nsml" / "datasets" / "demo"


def _read(dataset: str) -> tuple[list[str], list[float]]:
    folder = DEMO / dataset / "train"
    lines = (folder / "train_data").read_text(encoding="utf-8").splitlines()
    labels = [float(x) for x in (folder / "train_label").read_text().splitlines()]
    return lines, labels


KIN = _read("demo_kin")
MOVIE = _read("demo_movie")


def _chars(texts: list[str], vocab: Vocab) -> torch.Tensor:
    return pad_batch([vocab.encode(list(t)) for t in texts], 60)


def _full_loss(model: torch.nn.Module, inputs: list[torch.Tensor], targets: torch.Tensor, task: str) -> float:
    outputs = predict(model, inputs)
    return float(loss_function(task)(outputs, targets))  # type: ignore[arg-type]


def _learns(model: torch.nn.Module, inputs: list[torch.Tensor], targets: torch.Tensor, task: str) -> None:
    """A few epochs of the shared loop bring the (dropout-free) training loss down clearly."""
    before = _full_loss(model, inputs, targets, task)
    config = TrainConfig(task=task, epochs=6, batch_size=16, lr=3e-3, patience=100, progress=False)  # type: ignore[arg-type]
    result = fit(model, inputs, targets, config, valid=(inputs, targets))
    after = _full_loss(model, inputs, targets, task)
    assert after < 0.8 * before, (type(model).__name__, before, after, result.history)
    assert [h["epoch"] for h in result.history] == list(range(6))


@pytest.fixture(scope="module")
def kin_tensors() -> tuple[Vocab, torch.Tensor, torch.Tensor, torch.Tensor]:
    lines, labels = KIN
    first = [line.split("\t")[0] for line in lines]
    second = [line.split("\t")[1] for line in lines]
    vocab = Vocab.build([list(t) for t in first + second])
    return vocab, _chars(first, vocab), _chars(second, vocab), torch.tensor(labels)


@pytest.fixture(scope="module")
def movie_tensors() -> tuple[Vocab, torch.Tensor, torch.Tensor]:
    lines, labels = MOVIE
    vocab = Vocab.build([list(t) for t in lines])
    y = torch.tensor(labels)
    return vocab, _chars(lines, vocab), (y - y.mean()) / y.std()


def test_char_mlp_baseline_learns(movie_tensors: tuple[Vocab, torch.Tensor, torch.Tensor]) -> None:
    from kortext.jamo import BASELINE_VOCAB_SIZE, encode_baseline

    ids = torch.tensor([encode_baseline(t, 60) for t in MOVIE[0]])
    _learns(CharMLP(BASELINE_VOCAB_SIZE, 60, layers=6), [ids], movie_tensors[2], "regression")


@pytest.mark.parametrize("mode", ["rand", "static", "non-static"])
def test_textcnn_learns_in_all_three_kim_modes(
    movie_tensors: tuple[Vocab, torch.Tensor, torch.Tensor], mode: str
) -> None:
    vocab, ids, y = movie_tensors
    embeddings = None if mode == "rand" else torch.randn(len(vocab), 32)
    model = TextCNN(len(vocab), 32, mode=mode, embeddings=embeddings, dropout=0.0)  # type: ignore[arg-type]
    frozen = model.embedding.weight.clone()
    _learns(model, [ids], y, "regression")
    assert torch.equal(frozen, model.embedding.weight) == (mode == "static")


def test_textcnn_modes_need_embeddings() -> None:
    with pytest.raises(ValueError, match="needs pre-trained embeddings"):
        TextCNN(100, mode="static")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_birnn_with_attention_learns(
    kin_tensors: tuple[Vocab, torch.Tensor, torch.Tensor, torch.Tensor], cell: str
) -> None:
    vocab, first, _, labels = kin_tensors
    ids = first
    target = (labels > 0).float()
    _learns(
        RNNClassifier(len(vocab), embed_dim=32, hidden=32, cell=cell, dropout=0.0), [ids], target, "binary"
    )


def test_attention_pooling_ignores_padding() -> None:
    encoder = RNNEncoder(20, embed_dim=8, hidden=8, dropout=0.0).eval()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[3, 4, 5, 0, 0, 0]])
    assert torch.allclose(encoder.encode(short), encoder.encode(padded), atol=1e-6)


def test_siamese_and_esim_learn_pairs(
    kin_tensors: tuple[Vocab, torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    vocab, first, second, labels = kin_tensors
    siamese = SiameseClassifier(RNNEncoder(len(vocab), 32, 32, dropout=0.0), hidden=64, dropout=0.0)
    _learns(siamese, [first, second], labels, "binary")
    _learns(ESIM(len(vocab), 32, 32, dropout=0.0), [first, second], labels, "binary")


def test_siamese_features_are_symmetric() -> None:
    model = SiameseClassifier(TextCNN(30, 16, dropout=0.0), hidden=8, dropout=0.0).eval()
    a, b = torch.tensor([[1, 2, 3, 4, 5]]), torch.tensor([[5, 6, 7, 0, 0]])
    u, v = model.encoder.encode(a), model.encoder.encode(b)  # type: ignore[operator]
    assert torch.allclose((u - v).abs(), (v - u).abs()) and torch.allclose(u * v, v * u)


def test_early_stopping_keeps_the_best_epoch(movie_tensors: tuple[Vocab, torch.Tensor, torch.Tensor]) -> None:
    vocab, ids, y = movie_tensors
    model = TextCNN(len(vocab), 16, num_filters=8)
    config = TrainConfig(task="regression", epochs=30, batch_size=16, lr=0.05, patience=2, progress=False)
    result = fit(model, [ids], y, config)
    scores = [h["valid_score"] for h in result.history]
    assert len(scores) < 30, "patience 2 stops long before 30 epochs at this learning rate"
    assert result.best_score == min(scores) and scores[result.best_epoch] == result.best_score
    assert all(s >= result.best_score for s in scores[result.best_epoch + 1 :])


def test_tfidf_baselines() -> None:
    lines, labels = KIN
    first = [line.split("\t")[0] for line in lines]
    second = [line.split("\t")[1] for line in lines]
    pair = TfidfPairClassifier().fit(first, second, [int(x) for x in labels])
    assert ((pair.predict(first, second) > 0.5) == np.array(labels, dtype=bool)).mean() > 0.9
    same = similarity_features(["재즈란 뭔가요?"], ["재즈란 뭔가요?"])[0]
    other = similarity_features(["재즈란 뭔가요?"], ["라면 맛있게 끓이는 법"])[0]
    assert same[0] == 1.0 and other[0] == 0.0 and same[2] > other[2]
    ridge = TfidfLinear("regression").fit(MOVIE[0], MOVIE[1])
    train_mse = float(((ridge.predict(MOVIE[0]) - np.array(MOVIE[1])) ** 2).mean())
    assert train_mse < float(np.var(MOVIE[1])) / 2


def test_ensembles_average_and_stack() -> None:
    a, b = np.array([0.2, 0.9]), np.array([0.4, 0.5])
    assert np.allclose(average([a, b]), [0.3, 0.7]) and np.allclose(average([a, b], [3, 1]), [0.25, 0.8])
    with pytest.raises(ValueError, match="2 weights for 1 members"):
        average([a], [1, 2])
    assert np.allclose(AveragingEnsemble([lambda x: a, lambda x: b]).predict(["x", "y"]), [0.3, 0.7])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    good = np.clip(labels * 0.8 + rng.normal(0.1, 0.1, 200), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 200)
    stacked = Stacker().fit([good, noise], labels)
    assert abs(stacked.model.coef_[0][0]) > 5 * abs(stacked.model.coef_[0][1])


@pytest.mark.parametrize("model", MODELS)
def test_every_pipeline_trains_saves_and_loads(model: str, tmp_path: Path) -> None:
    pair = model in ("siamese", "esim", "ensemble")
    lines, labels = KIN if pair else MOVIE
    task = "binary" if pair else "regression"
    options = Options(
        epochs=2,
        embed_dim=16,
        hidden=16,
        max_length=40,
        progress=False,
        members="tfidf,mlp",
        encoder_size="tiny",
    )
    pipeline = make_pipeline(model, task, pair, options)
    result = pipeline.fit(lines, labels)
    assert result["train_rows"] == len(lines)
    before = pipeline.predict(lines[:20])
    pipeline.save(tmp_path)
    loaded = Pipeline.load(tmp_path)
    assert np.allclose(loaded.predict(lines[:20]), before, atol=1e-6)
    rows = loaded.infer(lines[:3])
    if task == "binary":
        assert all(0 <= p <= 1 and pred == int(p > 0.5) for p, pred in rows)
    else:
        assert all(1 <= pred <= 10 for _, pred in rows)


@pytest.mark.parametrize(("model", "pair"), [("bigru", False), ("esim", True)])
def test_a_sentencepiece_model_is_learnt_from_train_and_kept_in_the_checkpoint(
    model: str, pair: bool, tmp_path: Path
) -> None:
    lines, labels = KIN if pair else MOVIE
    options = Options(
        epochs=2, embed_dim=16, hidden=16, max_length=40, progress=False, tokenizer="sentencepiece",
        subword_vocab=1000,
    )  # fmt: skip
    pipeline = make_pipeline(model, "binary" if pair else "regression", pair, options)
    pipeline.fit(lines, labels)
    tokenizer = pipeline.tokenizer()  # type: ignore[attr-defined]
    assert tokenizer.name == "sentencepiece" and 300 < tokenizer.vocab_size <= 1000
    before = pipeline.predict(lines[:20])
    pipeline.save(tmp_path)
    assert (tmp_path / "spm.model").is_file()
    loaded = Pipeline.load(tmp_path)
    assert np.allclose(loaded.predict(lines[:20]), before, atol=1e-6)
    with pytest.raises(RuntimeError, match="learnt by fit or restored by load"):
        make_pipeline(model, "binary" if pair else "regression", pair, options).tokenizer()  # type: ignore[attr-defined]


def test_bad_choices_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="unknown model 'bert'; choose one of tfidf"):
        make_pipeline("bert", "binary", True)
    with pytest.raises(ValueError, match="compares two texts"):
        make_pipeline("esim", "regression", False)
    with pytest.raises(FileNotFoundError, match="pipeline.json"):
        Pipeline.load(Path("/nonexistent"))


def test_calibrated_ratings_beat_the_raw_linear_score(shared_data: Path) -> None:
    from kortext.corpora import iter_nsmc

    rows = list(iter_nsmc(shared_data / "nsmc" / "reviews.tsv.gz", limit=24_000))
    texts, ratings = [r for r, _ in rows], np.array([float(y) for _, y in rows])
    fit_rows, calibration_rows, test_rows = slice(0, 16_000), slice(16_000, 20_000), slice(20_000, None)
    model = TfidfLinear("regression").fit(texts[fit_rows], ratings[fit_rows])
    raw = np.clip(model.predict(texts[test_rows]), 1, 10)
    model.calibrate(texts[calibration_rows], ratings[calibration_rows])
    calibrated = model.predict(texts[test_rows])
    assert calibrated.min() >= 1 and calibrated.max() <= 10
    raw_mse = float(((raw - ratings[test_rows]) ** 2).mean())
    calibrated_mse = float(((calibrated - ratings[test_rows]) ** 2).mean())
    assert calibrated_mse < raw_mse - 0.05, (raw_mse, calibrated_mse)


def test_an_ensemble_of_saved_checkpoints_averages_them(tmp_path: Path) -> None:
    from kortext.pipeline import EnsemblePipeline, parse_checkpoints

    lines, labels = KIN
    options = Options(epochs=1, hidden=16, progress=False)
    saved = []
    for number, model in enumerate(("tfidf", "mlp")):
        pipeline = make_pipeline(model, "binary", True, options)
        pipeline.fit(lines, labels)
        pipeline.save(tmp_path / str(number))
        saved.append(Pipeline.load(tmp_path / str(number)))  # as a session would restore them
    ensemble = EnsemblePipeline.of(saved)
    expected = np.mean([p.predict(lines) for p in saved], axis=0)
    assert np.allclose(ensemble.predict(lines), expected)
    ensemble.save(tmp_path / "ensemble")
    again = Pipeline.load(tmp_path / "ensemble")
    assert np.allclose(again.predict(lines), expected) and [m.model_name for m in again.members] == [
        "tfidf",
        "mlp",
    ]

    movie = make_pipeline("tfidf", "regression", False, options)
    movie.fit(*MOVIE)
    with pytest.raises(ValueError, match="different tasks"):
        EnsemblePipeline.of([saved[0], movie])
    assert parse_checkpoints("kin/3:best, root/kin/5:best:v1") == [
        ("kin/3", "best"),
        ("root/kin/5", "best:v1"),
    ]
    with pytest.raises(ValueError, match="SESSION:CHECKPOINT"):
        parse_checkpoints("kin/3")


def test_a_seed_reproduces_a_neural_run_exactly() -> None:
    lines, labels = KIN

    def train(seed: int) -> np.ndarray:
        pipeline = make_pipeline(
            "siamese", "binary", True, Options(epochs=2, hidden=16, seed=seed, progress=False)
        )
        pipeline.fit(lines, labels)
        return pipeline.predict(lines)

    first = train(1)
    assert np.array_equal(first, train(1))  # same seed: the same split, initial weights and batches
    assert not np.allclose(first, train(2))


def test_textcnn_starts_from_published_word_vectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kortext.embeddings import save_for_mmap, train_word2vec

    lines, labels = MOVIE
    sentences = [list(line) for line in lines]  # the char tokenizer's tokens
    vectors = train_word2vec(sentences, vector_size=24, min_count=1, epochs=2, workers=1)
    save_for_mmap(vectors, tmp_path / "nsml_local" / "shared" / "chars24")  # what `nsml shared pull` leaves
    monkeypatch.chdir(tmp_path)
    options = Options(epochs=1, hidden=16, max_length=40, progress=False, embeddings="chars24")
    pipeline = make_pipeline("textcnn-static", "regression", False, options)
    pipeline.fit(lines, labels)
    assert pipeline.options.embed_dim == 24  # the vectors' width, whatever --embed-dim said
    network = pipeline.network  # type: ignore[attr-defined]
    table = next(m for m in network.modules() if isinstance(m, torch.nn.Embedding)).weight.detach()
    vocab = pipeline.vocab  # type: ignore[attr-defined]
    word = next(t for t in vocab.itos if t in vectors)
    assert np.allclose(table[vocab.itos.index(word)].numpy(), vectors[word], atol=1e-6)  # static: kept
    pipeline.save(tmp_path / "ckpt")
    (tmp_path / "nsml_local" / "shared" / "chars24" / "vectors.kv").unlink()  # a submission needs none
    loaded = Pipeline.load(tmp_path / "ckpt")
    assert np.allclose(loaded.predict(lines[:5]), pipeline.predict(lines[:5]), atol=1e-6)

    other = train_word2vec([[f"w:{t}" for t in s] for s in sentences], vector_size=8, min_count=1, workers=1)
    save_for_mmap(other, tmp_path / "nsml_local" / "shared" / "words")  # another tokenizer's tokens
    wrong = make_pipeline("textcnn-static", "regression", False, replace(options, embeddings="words"))
    with pytest.raises(ValueError, match="no word of the training texts is in embeddings 'words'"):
        wrong.fit(lines, labels)
