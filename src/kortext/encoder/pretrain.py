"""Masked-language-model pretraining of :class:`~kortext.encoder.model.TransformerEncoder`.

Why MLM (BERT) and not ELECTRA's replaced-token detection: ELECTRA learns more per step but
trains a generator beside the discriminator, which at these sizes costs about as much again
per step on a CPU; with a fixed 90-minute budget on two cores, the simpler objective was the
safer default. The run stops at whichever comes first, ``steps`` or ``minutes``, and the
learning rate decays over that same progress, so a time-bounded run still ends annealed.
A checkpoint (``resume.pt``) is written every ``checkpoint_minutes``; a stopped run started
again with the same settings and folder continues from it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kortext.encoder.model import (
    CLS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIALS,
    EncoderConfig,
    MaskedLanguageModel,
)
from kortext.progress import ProgressLines
from kortext.tokenizers import Tokenizer
from kortext.vocab import Vocab

ENCODER_FILE = "encoder.pt"
VOCAB_FILE = "vocab.json"
INFO_FILE = "info.json"
RESUME_FILE = "resume.pt"
PUBLISHED_FILES = (ENCODER_FILE, VOCAB_FILE, INFO_FILE)
RESUMABLE_CHANGES = ("device", "minutes", "checkpoint_minutes")
FIRST_TOKEN = len(SPECIALS) + 2  # ids below are <pad>, <unk> and the specials

# tiny: tests. small: the CPU default (BERT-mini's shape). base: a GPU.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"dim": 32, "layers": 1, "heads": 2, "ff": 64},
    "small": {"dim": 256, "layers": 4, "heads": 4, "ff": 1024},
    "base": {"dim": 512, "layers": 8, "heads": 8, "ff": 2048},
}
DEFAULT_STEPS = {"tiny": 200, "small": 5_000, "base": 60_000}
DEFAULT_BATCH = {"tiny": 32, "small": 64, "base": 256}


@dataclass(frozen=True)
class PretrainSettings:
    size: str = "small"
    steps: int = 0  # 0: the size's default
    minutes: float = 90.0  # stop (annealed) after this much training time, whatever the steps
    batch_size: int = 0  # 0: the size's default
    lr: float = 5e-4
    max_length: int = 128  # tokens per text; NSMC reviews are at most 140 characters, mean 35
    mask_rate: float = 0.15
    vocab_size: int = 6000  # most frequent tokens kept (characters: covers NSMC's syllables)
    min_count: int = 3
    seed: int = 0
    device: str = "cpu"
    checkpoint_minutes: float = 10.0

    def resolved(self) -> PretrainSettings:
        return replace(
            self,
            steps=self.steps or DEFAULT_STEPS[self.size],
            batch_size=self.batch_size or DEFAULT_BATCH[self.size],
        )


@dataclass
class RunState:
    """What a checkpoint must carry besides the weights, for a resumed run to go on."""

    step: int = 0
    elapsed: float = 0.0
    tokens: int = 0
    losses: list[float] = field(default_factory=list)  # the mean of every 50 steps


@dataclass
class Corpus:
    """Every example as ids (``[CLS] text`` or ``[CLS] a [SEP] b``) in one flat array."""

    tokens: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    second: np.ndarray  # where segment 1 starts (== length for a single text)

    def __len__(self) -> int:
        return len(self.starts)


def build_vocab(tokenized: Sequence[Sequence[str]], settings: PretrainSettings) -> Vocab:
    vocab = Vocab.build(tokenized, min_freq=settings.min_count, max_size=settings.vocab_size)
    return Vocab([*SPECIALS, *vocab.itos[2:]])


def encode_corpus(
    texts: Sequence[Sequence[str]], pairs: Sequence[tuple[Sequence[str], Sequence[str]]], vocab: Vocab,
    max_length: int,
) -> Corpus:  # fmt: skip
    rows: list[list[int]] = []
    second: list[int] = []
    for tokens in texts:
        rows.append([CLS_ID, *vocab.encode(tokens)][:max_length])
        second.append(len(rows[-1]))
    for first, other in pairs:
        head = [CLS_ID, *vocab.encode(first), SEP_ID]
        rows.append([*head, *vocab.encode(other)][:max_length])
        second.append(min(len(head), len(rows[-1])))
    kept = [i for i, row in enumerate(rows) if len(row) > 1]
    if not kept:
        raise ValueError("no text to pretrain on: every text was empty")
    lengths = np.array([len(rows[i]) for i in kept], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.fromiter((t for i in kept for t in rows[i]), dtype=np.int32, count=int(lengths.sum()))
    return Corpus(flat, starts, lengths, np.array([second[i] for i in kept], dtype=np.int64))


def batches(corpus: Corpus, batch_size: int, rng: np.random.Generator) -> Any:
    """Endless batches of similar lengths (little padding): shuffle, sort 50 batches' worth by
    length, cut, shuffle the batches."""
    while True:
        order = rng.permutation(len(corpus))
        for chunk_start in range(0, len(order), batch_size * 50):
            chunk = order[chunk_start : chunk_start + batch_size * 50]
            chunk = chunk[np.argsort(corpus.lengths[chunk], kind="stable")]
            cut = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            for index in rng.permutation(len(cut)):
                yield _pad(corpus, cut[index])


def _pad(corpus: Corpus, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    width = int(corpus.lengths[rows].max())
    ids = np.zeros((len(rows), width), dtype=np.int64)
    segments = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        start, length = corpus.starts[row], corpus.lengths[row]
        ids[r, :length] = corpus.tokens[start : start + length]
        segments[r, corpus.second[row] : length] = 1
    return torch.from_numpy(ids), torch.from_numpy(segments)


def mask_tokens(
    ids: torch.Tensor, rate: float, vocab_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: ``rate`` of the real tokens are chosen; of those 80% become
    ``<mask>``, 10% a random token, 10% stay. Returns the corrupted ids and the chosen places."""
    real = (ids != PAD_ID) & (ids != CLS_ID) & (ids != SEP_ID)
    draw = torch.rand(ids.shape, generator=generator)
    chosen = real & (draw < rate)
    if not bool(chosen.any()):  # a batch of one-character texts: still learn something
        chosen = real & (draw == draw.masked_fill(~real, 2.0).min())
    action = torch.rand(ids.shape, generator=generator)
    corrupted = ids.clone()
    corrupted[chosen & (action < 0.8)] = MASK_ID
    swap = chosen & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(FIRST_TOKEN, max(vocab_size, FIRST_TOKEN + 1), ids.shape, generator=generator)
    corrupted[swap] = random_ids[swap]
    return corrupted, chosen


def learning_rate_scale(step: int, steps: int, elapsed: float, budget_s: float) -> float:
    """Linear warm-up over the first 5% of steps (at most 1000), then linear decay to zero over
    the run's progress: the larger of steps done and time spent."""
    warmup = max(1, min(1000, steps // 20))
    progress = max(step / steps, elapsed / budget_s if budget_s > 0 else 0.0)
    return min(1.0, (step + 1) / warmup) * max(0.0, 1.0 - progress)


def pretrain(
    corpus: Corpus, vocab: Vocab, settings: PretrainSettings, folder: Path,
    progress: bool = True, info: dict[str, Any] | None = None, say: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train, checkpointing into ``folder``, then write the encoder's files there with ``info``
    and what the run did (steps, tokens, minutes, first and last loss), which it returns."""
    settings = settings.resolved()
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    config = EncoderConfig(
        vocab_size=len(vocab), max_positions=max(320, settings.max_length), **SIZES[settings.size]
    )
    model = MaskedLanguageModel(config).to(settings.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.98), weight_decay=0.01)
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    spec = {
        # what changes the run; a resumed run may get another device or more minutes
        "settings": {k: v for k, v in asdict(settings).items() if k not in RESUMABLE_CHANGES},
        "config": config.to_dict(),
        "examples": len(corpus),
    }
    state = RunState()
    resumed = _resume(folder / RESUME_FILE, spec, model, optimizer, rng, generator, state, say)
    budget_s = settings.minutes * 60
    stream = batches(corpus, settings.batch_size, rng)
    lines = ProgressLines(30.0)
    bar = _bar(settings.steps, state.step, progress)
    loss_fn = nn.CrossEntropyLoss()
    started, last_checkpoint = time.monotonic() - state.elapsed, time.monotonic()
    window: list[float] = []
    model.train()
    while True:
        elapsed = time.monotonic() - started
        scale = learning_rate_scale(state.step, settings.steps, elapsed, budget_s)
        if state.step >= settings.steps or scale <= 0.0:
            break
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * scale
        ids, segments = next(stream)
        corrupted, chosen = mask_tokens(ids, settings.mask_rate, len(vocab), generator)
        corrupted, segments = corrupted.to(settings.device), segments.to(settings.device)
        hidden = model.encoder(corrupted, segments)
        loss = loss_fn(model.head(hidden[chosen.to(settings.device)]), ids[chosen].to(settings.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        state.step += 1
        state.tokens += int((ids != PAD_ID).sum())
        window.append(loss.item())
        if len(window) == 50 or state.step == settings.steps:
            state.losses.append(sum(window) / len(window))
            window = []
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{window[-1] if window else 0:.3f}")
        elif progress and lines.due():
            rate = state.tokens / max(elapsed, 1e-9)
            recent = (window or state.losses)[-1]
            lines.say(f"mlm step {state.step}/{settings.steps} loss {recent:.3f} {rate:.0f} tokens/s")
        if time.monotonic() - last_checkpoint >= settings.checkpoint_minutes * 60:
            state.elapsed = time.monotonic() - started
            _checkpoint(folder / RESUME_FILE, spec, model, optimizer, rng, generator, state)
            last_checkpoint = time.monotonic()
    if window:
        state.losses.append(sum(window) / len(window))
    if bar is not None:
        bar.close()
    seconds = time.monotonic() - started
    summary = {
        **(info or {}), "kind": "mlm", "size": settings.size, "config": config.to_dict(),
        "steps": state.step,
        "planned_steps": settings.steps, "batch_size": settings.batch_size, "examples": len(corpus),
        "tokens_seen": state.tokens, "minutes": round(seconds / 60, 2),
        "tokens_per_s": round(state.tokens / max(seconds, 1e-9)), "device": settings.device,
        "first_loss": state.losses[0] if state.losses else math.nan,
        "last_loss": state.losses[-1] if state.losses else math.nan,
        "losses": [round(x, 4) for x in state.losses], "resumed": resumed,
    }  # fmt: skip
    save_encoder(folder, model.encoder.cpu().state_dict(), vocab, summary)
    (folder / RESUME_FILE).unlink(missing_ok=True)
    return summary


def _bar(steps: int, done: int, progress: bool) -> Any:
    if not (progress and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=steps, initial=done, unit="step", desc="mlm")


def _checkpoint(
    path: Path, spec: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
    rng: np.random.Generator, generator: torch.Generator, state: RunState,
) -> None:  # fmt: skip
    scratch = path.with_suffix(".tmp")
    torch.save({
        "spec": spec, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "rng": rng.bit_generator.state, "generator": generator.get_state(),
        "state": asdict(state),
    }, scratch)  # fmt: skip
    scratch.replace(path)  # a run killed mid-write keeps the previous checkpoint


def _resume(path: Path, spec: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
            rng: np.random.Generator, generator: torch.Generator, state: RunState,
            say: Callable[[str], None]) -> bool:  # fmt: skip
    if not path.is_file():
        return False
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved.get("spec") != spec:
        say(f"mlm: {path} was written with other settings or another corpus; starting afresh")
        return False
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    generator.set_state(saved["generator"])
    for key, value in saved["state"].items():
        setattr(state, key, value)
    rng.bit_generator.state = saved["rng"]  # a new batch order from here: the samples differ, not the run
    say(f"mlm: resuming at step {state.step} from {path}")
    return True


def save_encoder(folder: Path, weights: dict[str, torch.Tensor], vocab: Vocab, info: dict[str, Any]) -> None:
    torch.save(weights, folder / ENCODER_FILE)
    (folder / VOCAB_FILE).write_text(json.dumps(vocab.to_dict(), ensure_ascii=False), encoding="utf-8")
    (folder / INFO_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")


def pretrain_texts(
    texts: Sequence[str], pairs: Sequence[tuple[str, str]], tokenizer: Tokenizer, settings: PretrainSettings,
    folder: Path, progress: bool = True, info: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Tokenize single texts and text pairs, build the vocabulary from them, and pretrain."""
    workers = None if len(texts) + len(pairs) >= 20000 else 1
    singles = tokenizer.tokenize_batch(list(texts), workers=workers, progress=progress)
    flat = tokenizer.tokenize_batch([t for pair in pairs for t in pair], workers=workers, progress=False)
    vocab = build_vocab([*singles, *flat], settings)
    corpus = encode_corpus(
        singles, list(zip(flat[0::2], flat[1::2], strict=True)), vocab, settings.max_length
    )
    extra = {**(info or {}), "texts": len(texts), "pairs": len(pairs), "vocabulary": len(vocab)}
    return pretrain(corpus, vocab, settings, folder, progress=progress, info=extra)
