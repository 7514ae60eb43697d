"""Train the G2P network on CMUdict within a time budget, score it, export it to ONNX.

    fit(G2PTrainConfig(), "exp/g2p")              # -> exp/g2p/g2p.pt, train.log
    export("exp/g2p/g2p.pt", "data/models/g2p-en")  # model.onnx + labels.json

The checkpoint kept is the one with the lowest phone error rate on the development words.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asr.bilstm import optimizer_step
from asr.g2p import data
from asr.g2p.model import G2PConfig, G2PNet
from asr.g2p.runtime import LABELS_FILE, MODEL_FILE, collapse
from asr.inference.onnx_export import export_small_graph
from asr.metrics import error_counts

__all__ = ["G2PTrainConfig", "TrainConfig", "export", "fit", "load_checkpoint", "phone_error_rate"]


@dataclass(frozen=True)
class TrainConfig:
    batch_words: int = 256  # words per batch
    lr: float = 2e-3  # Adam's peak learning rate, cosine-decayed over the time budget
    warmup_steps: int = 300  # linear warm-up
    max_minutes: float = 20.0  # wall-clock budget
    max_steps: int = 1_000_000  # or after this many steps
    eval_every: int = 1000  # steps between development evaluations
    threads: int = 2  # torch CPU threads
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("lr", "max_minutes"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"train.{name} must be a finite number > 0, got {value}")
        for name in ("batch_words", "max_steps", "eval_every", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class G2PTrainConfig:
    model: G2PConfig = field(default_factory=G2PConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def phone_error_rate(
    predict: Callable[[list[str]], dict[str, list[str]]], examples: Sequence[data.Example]
) -> dict[str, float]:
    """Phone error rate (edit distance over reference phones) and word error rate (words
    with any phone wrong) of `predict` on `examples`."""
    hyps = predict([word for word, _ in examples])
    refs = [" ".join(phones) for _, phones in examples]
    hyp_text = [" ".join(hyps.get(word, [])) for word, _ in examples]
    per = error_counts(refs, hyp_text, unit="word").rate  # phones are the "words" here
    wrong = sum(r != h for r, h in zip(refs, hyp_text, strict=True))
    return {"per": per, "word_error": wrong / max(1, len(examples)), "words": len(examples)}


def by_length(examples: Sequence[data.Example]) -> dict[int, list[data.Example]]:
    """Examples grouped by letter count: a batch from one group needs no padding."""
    groups: dict[int, list[data.Example]] = {}
    for example in examples:
        groups.setdefault(len(example[0]), []).append(example)
    return groups


def _batch(examples: Sequence[data.Example]):
    """Letters (B, L) of same-length words, concatenated phone targets, target lengths."""
    letters = torch.tensor([data.encode_letters(w) for w, _ in examples])  # (B, L)
    targets = [data.encode_phones(p) for _, p in examples]
    flat = torch.tensor([t for target in targets for t in target], dtype=torch.int64)
    return letters, flat, torch.tensor([len(t) for t in targets])


def _loss(model: G2PNet, examples: Sequence[data.Example]) -> torch.Tensor:
    letters, targets, target_lengths = _batch(examples)
    log_probs = model(letters)  # (B, RL, P)
    frames = torch.full((len(examples),), log_probs.shape[1], dtype=torch.int64)
    return F.ctc_loss(
        log_probs.transpose(0, 1), targets, frames, target_lengths, zero_infinity=True
    )


def random_batch(groups, sizes, config: TrainConfig, rng: np.random.Generator):
    """Up to batch_words words of one length, the length drawn in proportion to its words."""
    length = rng.choice(sizes[0], p=sizes[1])
    group = groups[length]
    picks = rng.integers(0, len(group), size=min(len(group), config.batch_words))
    return [group[i] for i in picks]


@torch.no_grad()
def torch_predict(model: G2PNet, words: list[str], batch: int = 512) -> dict[str, list[str]]:
    """Greedy CTC phones of each word, batched by length (the training-time twin of the
    runtime's one word at a time)."""
    model.eval()
    out: dict[str, list[str]] = {}
    for group in by_length([(w, []) for w in words]).values():
        for start in range(0, len(group), batch):
            part = [w for w, _ in group[start : start + batch]]
            letters = torch.tensor([data.encode_letters(w) for w in part])
            best = model(letters).argmax(-1).numpy()  # (B, RL)
            for word, frames in zip(part, best, strict=True):
                out[word] = collapse(frames, data.PHONE_SYMBOLS)
    model.train()
    return out


def _learning_rate(config: TrainConfig, step: int, elapsed: float) -> float:
    warm = min(1.0, (step + 1) / config.warmup_steps)
    progress = min(1.0, elapsed / (60 * config.max_minutes))
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))


def fit(config: G2PTrainConfig, out_dir: str | Path) -> dict:
    """Train on CMUdict's training words until the budget is spent; keep the checkpoint with
    the lowest development PER as <out_dir>/g2p.pt; one JSON line per evaluation in train.log."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    rng = np.random.default_rng(config.train.seed)
    parts = data.split(data.load_examples())
    train, dev = parts["train"], parts["dev"]
    groups = by_length(train)
    lengths = np.array(sorted(groups))
    sizes = (lengths, np.array([len(groups[n]) for n in lengths]) / len(train))
    model = G2PNet(config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    start, best, step = time.time(), {"per": math.inf}, 0
    while step < config.train.max_steps and time.time() - start < 60 * config.train.max_minutes:
        loss = _loss(model, random_batch(groups, sizes, config.train, rng))
        optimizer_step(
            model, optimizer, loss, _learning_rate(config.train, step, time.time() - start)
        )
        step += 1
        if step % config.train.eval_every == 0:
            best = _evaluate_and_keep(model, dev, step, start, loss, best, out_dir)
    if step % config.train.eval_every:  # the last steps, not yet scored
        best = _evaluate_and_keep(model, dev, step, start, loss, best, out_dir)
    return best


def _evaluate_and_keep(model, dev, step, start, loss, best, out_dir: Path) -> dict:
    scores = phone_error_rate(lambda words: torch_predict(model, words), dev)
    entry = {"step": step, "minutes": round((time.time() - start) / 60, 2)}
    entry |= {"loss": round(loss.item(), 4), "dev_per": round(scores["per"], 4)}
    entry["dev_word_error"] = round(scores["word_error"], 4)
    with open(out_dir / "train.log", "a") as f:
        f.write(json.dumps(entry) + "\n")
    if scores["per"] < best["per"]:
        best = {"per": scores["per"], **entry}
        checkpoint = {"config": asdict(model.config), "state_dict": model.state_dict()}
        torch.save(checkpoint, out_dir / "g2p.tmp")
        (out_dir / "g2p.tmp").replace(out_dir / "g2p.pt")
    return best


def load_checkpoint(path: str | Path) -> G2PNet:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = G2PNet(G2PConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def export(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """The model folder: model.onnx (one word's letter ids (1, L) in, log-probabilities
    (1, L * repeat, P) out; weights stored as float16) and labels.json."""
    model = load_checkpoint(checkpoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    axes = {"letters": {1: "letters"}, "log_probs": {1: "frames"}}
    export_small_graph(model, torch.ones(1, 7, dtype=torch.int64), out_dir / MODEL_FILE, axes)
    labels = {
        "letters": list(data.LETTERS),
        "phones": list(data.PHONE_SYMBOLS),
        "g2p": asdict(model.config),
    }
    (out_dir / LABELS_FILE).write_text(json.dumps(labels, indent=1))
    return out_dir
