"""Fit the word LSTM within a time budget, keeping the checkpoint best on validation.

The checkpoint (`rnnlm.pt`) holds plain values only (config fields, the vocabulary's words,
tensors), so `torch.load(weights_only=True)` reads it without running code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asr.bilstm import optimizer_step
from asr.files import atomic_write
from asr.rnnlm import data
from asr.rnnlm.model import RNNLMConfig, WordLSTM


@dataclass(frozen=True)
class RNNLMTrainConfig:
    model: RNNLMConfig = field(default_factory=RNNLMConfig)
    max_lines: int | None = None  # text lines read (None: all)
    batch_size: int = 64  # parallel streams
    bptt: int = 32  # words per truncated-backprop window
    lr: float = 2e-3  # Adam, cosine-decayed over the time budget
    clip: float = 1.0  # gradient norm bound
    max_minutes: float = 40.0  # training time budget
    eval_every: int = 500  # steps between validation scores
    valid_words: int = 200_000  # validation words scored each time
    threads: int = 2  # torch CPU threads
    seed: int = 0


def fit(text: str | Path, out: str | Path, config: RNNLMTrainConfig) -> dict:
    """Train on `text` (one normalized sentence a line); write out/rnnlm.pt (best on
    validation) and out/train.log (one JSON line per validation). Returns the best line."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_lines, valid_lines = data.read_lines(text, config.max_lines)
    vocab = data.build_vocab(train_lines, config.model.vocab_size)
    train_ids = data.to_ids(train_lines, vocab)
    valid_ids = data.to_ids(valid_lines, vocab)[: config.valid_words]
    del train_lines, valid_lines
    model = WordLSTM(config.model)
    optim = torch.optim.Adam(model.parameters(), lr=config.lr)
    best, step, started = {"valid_ppl": math.inf}, 0, time.monotonic()
    budget = config.max_minutes * 60
    rng = np.random.default_rng(config.seed)
    while time.monotonic() - started < budget:
        state = None
        for window in data.stream_batches(train_ids, config.batch_size, config.bptt, rng):
            elapsed = time.monotonic() - started
            if elapsed >= budget:
                break
            state = _train_step(model, optim, window, state, config, elapsed / budget)
            step += 1
            if step % config.eval_every == 0:
                best = _validate(model, valid_ids, vocab, config, step, elapsed, best, out)
    return _validate(model, valid_ids, vocab, config, step, budget, best, out)


def _train_step(model, optim, window: np.ndarray, state, config, progress: float):
    """One window: (B, bptt + 1) ids; returns the detached LSTM state to carry on."""
    model.train()
    batch = torch.from_numpy(window.astype(np.int64))
    hidden, state = model(batch[:, :-1], state)  # (B, T, H)
    loss = -model.target_log_probs(hidden, batch[:, 1:]).mean()
    lr = config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    optimizer_step(model, optim, loss, lr, config.clip)
    return tuple(s.detach() for s in state)


@torch.no_grad()
def perplexity(model: WordLSTM, ids: np.ndarray, bptt: int = 64) -> float:
    """Per-word perplexity of one stream of ids (EOS included)."""
    model.eval()
    batch = torch.from_numpy(ids.astype(np.int64))[None]  # (1, N)
    total, count, state = 0.0, 0, None
    for t in range(0, batch.shape[1] - 1, bptt):
        window = batch[:, t : t + bptt + 1]
        hidden, state = model(window[:, :-1], state)
        total -= float(model.target_log_probs(hidden, window[:, 1:]).sum())
        count += window.shape[1] - 1
    return math.exp(total / max(count, 1))


def _validate(model, valid_ids, vocab, config, step, elapsed, best, out: Path) -> dict:
    ppl = perplexity(model, valid_ids)
    line = {"step": step, "minutes": round(elapsed / 60, 1), "valid_ppl": round(ppl, 2)}
    with open(out / "train.log", "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)
    if ppl < best["valid_ppl"]:
        save(model, vocab, out / "rnnlm.pt")
        return line
    return best


def save(model: WordLSTM, vocab: data.WordVocab, path: Path) -> None:
    record = {
        "config": dataclasses.asdict(model.config),
        "words": list(vocab.words),
        "state_dict": model.state_dict(),
    }
    with atomic_write(path, binary=True) as f:
        torch.save(record, f)
