"""Prepare the tagger's data, train it on the CPU within a time budget, export it to ONNX.

    prepare(["../shared/data/gutenberg", "../shared/data/gutenberg_extra"], "exp/punct/data")
    fit(config, "exp/punct/data", "exp/punct/run")       # -> tagger.pt, train.log
    export("exp/punct/run/tagger.pt", "data/models/punct-en")

Each batch holds windows of one random length cut anywhere in the word stream (across
sentence and paragraph ends, as a recognizer's utterances are), so no padding is needed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asr.bilstm import optimizer_step
from asr.config import check_ranges
from asr.inference.onnx_export import export_small_graph
from asr.punctuation import data
from asr.punctuation.metrics import capital_f1, punct_f1s
from asr.punctuation.model import Tagger, TaggerConfig
from asr.punctuation.runtime import LABELS_FILE, MODEL_FILE, VOCAB_FILE

__all__ = [
    "PunctTrainConfig",
    "TrainConfig",
    "export",
    "fit",
    "load_checkpoint",
    "prepare",
    "save_checkpoint",
]


@dataclass(frozen=True)
class TrainConfig:
    batch_words: int = 4096  # words per batch (windows x window length)
    min_len: int = 8  # shortest window, words
    max_len: int = 96  # longest window, words
    lr: float = 3e-3  # Adam's peak learning rate, cosine-decayed over the time budget
    warmup_steps: int = 200  # linear warm-up
    max_minutes: float = 35.0  # wall-clock budget; training stops when it is spent
    max_steps: int = 1_000_000  # or after this many steps
    eval_every: int = 500  # steps between development evaluations
    threads: int = 1  # torch CPU threads
    seed: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min_len <= self.max_len <= self.batch_words:
            raise ValueError(
                f"train: need 1 <= min_len <= max_len <= batch_words, got "
                f"{self.min_len}, {self.max_len}, {self.batch_words}"
            )
        check_ranges("train", self, _TRAIN_RANGES)


_TRAIN_RANGES = {
    "lr": (1e-8, 10.0),
    "max_minutes": (1e-3, 1e5),
    "max_steps": (1, 10**9),
    "eval_every": (1, 10**9),
    "threads": (1, 1024),
}


@dataclass(frozen=True)
class PunctTrainConfig:
    """recipes/punctuation/config.toml: [prepare], [tagger], [train]."""

    prepare: data.PrepareConfig = field(default_factory=data.PrepareConfig)
    tagger: TaggerConfig = field(default_factory=TaggerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _save_split(tagged: data.Tagged, vocabulary: list[str], path: Path) -> None:
    np.savez(
        path,
        ids=data.encode_words(tagged.words, vocabulary),  # (N,)
        cases=np.array(tagged.cases, dtype=np.int64),  # (N,)
        puncts=np.array(tagged.puncts, dtype=np.int64),  # (N,)
    )


def prepare(folders: list[str | Path], out_dir: str | Path, config: data.PrepareConfig) -> dict:
    """train.npz, dev.npz (ids, cases, puncts), vocab.txt and mixed.json in `out_dir`, from
    the training and development books of `folders` (test books are not read)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    books = data.split_books(folders)
    train, _ = data.sample_books(books["train"], config.words_per_book, config.seed)
    dev, _ = data.sample_books(books["dev"], config.dev_words_per_book, config.seed)
    vocabulary = data.make_vocabulary(train.words, config.vocab_size)
    (out_dir / VOCAB_FILE).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    mixed = data.mixed_forms(train, config.min_mixed)
    (out_dir / "mixed.json").write_text(json.dumps(mixed, indent=0, ensure_ascii=False))
    _save_split(train, vocabulary, out_dir / "train.npz")
    _save_split(dev, vocabulary, out_dir / "dev.npz")
    known = set(vocabulary)
    summary = {
        "train_books": len(books["train"]),
        "train_words": len(train.words),
        "dev_books": len(books["dev"]),
        "dev_words": len(dev.words),
        "vocabulary": len(vocabulary),
        "dev_unknown_rate": sum(w not in known for w in dev.words) / max(1, len(dev.words)),
        "mixed_forms": len(mixed),
        "test_ids": [b.gutenberg_id for b in books["test"]],
        "dev_ids": [b.gutenberg_id for b in books["dev"]],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _load_split(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return {k: arrays[k] for k in ("ids", "cases", "puncts")}


def random_batch(split: dict[str, np.ndarray], config: TrainConfig, rng: np.random.Generator):
    """Windows of one random length at random places: ids, cases, puncts, each (B, L)."""
    length = int(rng.integers(config.min_len, config.max_len + 1))
    n_windows = max(1, config.batch_words // length)
    starts = rng.integers(0, len(split["ids"]) - length, size=n_windows)
    index = starts[:, None] + np.arange(length)[None, :]  # (B, L)
    return tuple(torch.from_numpy(split[k][index]) for k in ("ids", "cases", "puncts"))


def compute_loss(model: Tagger, ids, cases, puncts) -> torch.Tensor:
    """Cross-entropy of both heads, summed; (B, L) inputs."""
    case_logits, punct_logits = model(ids)  # (B, L, C), (B, L, P)
    case_loss = F.cross_entropy(case_logits.flatten(0, 1), cases.flatten())
    punct_loss = F.cross_entropy(punct_logits.flatten(0, 1), puncts.flatten())
    return case_loss + punct_loss


@torch.no_grad()
def predict_windows(model: Tagger, ids: np.ndarray, window: int = 64):
    """Case and punct labels (N,) of a word stream cut into consecutive windows."""
    model.eval()
    n = len(ids) // window * window
    batch = torch.from_numpy(ids[:n].reshape(-1, window))  # (B, W)
    cases, puncts = [], []
    for chunk in batch.split(256):
        case_logits, punct_logits = model(chunk)
        cases.append(case_logits.argmax(-1).flatten())
        puncts.append(punct_logits.argmax(-1).flatten())
    model.train()
    return torch.cat(cases).numpy(), torch.cat(puncts).numpy(), n


def evaluate(model: Tagger, split: dict[str, np.ndarray]) -> dict[str, float]:
    """F1 of each mark and of capitals on a split, 64-word windows."""
    cases, puncts, n = predict_windows(model, split["ids"])
    scores = {k: v.f1 for k, v in punct_f1s(split["puncts"][:n], puncts).items()}
    scores["capital"] = capital_f1(split["cases"][:n], cases).f1
    return scores


def _learning_rate(config: TrainConfig, step: int, elapsed: float) -> float:
    warm = min(1.0, (step + 1) / config.warmup_steps)
    progress = min(1.0, elapsed / (60 * config.max_minutes))
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))


def _score(scores: dict[str, float]) -> float:
    return scores["period"] + scores["comma"] + scores["question"] + scores["capital"]


def fit(config: PunctTrainConfig, data_dir: str | Path, out_dir: str | Path) -> dict:
    """Train until the time budget or step count is spent; keep the checkpoint with the best
    development score (period + comma + question + capital F1) as <out_dir>/tagger.pt."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    rng = np.random.default_rng(config.train.seed)
    train, dev = _load_split(data_dir / "train.npz"), _load_split(data_dir / "dev.npz")
    vocabulary = (data_dir / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    tagger_config = TaggerConfig(**{**asdict(config.tagger), "vocab_size": len(vocabulary)})
    model = Tagger(tagger_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    start, best, step = time.time(), {"score": -1.0}, 0
    while step < config.train.max_steps and time.time() - start < 60 * config.train.max_minutes:
        loss = compute_loss(model, *random_batch(train, config.train, rng))
        optimizer_step(
            model, optimizer, loss, _learning_rate(config.train, step, time.time() - start)
        )
        step += 1
        if step % config.train.eval_every == 0:
            best = _evaluate_and_keep(model, dev, step, start, loss, best, out_dir, data_dir)
    best = _evaluate_and_keep(model, dev, step, start, loss, best, out_dir, data_dir)
    return best


def _evaluate_and_keep(model, dev, step, start, loss, best, out_dir, data_dir) -> dict:
    scores = evaluate(model, dev)
    entry = {
        "step": step,
        "minutes": round((time.time() - start) / 60, 2),
        "loss": round(loss.item(), 4),
    }
    entry |= {k: round(v, 4) for k, v in scores.items()}
    with open(out_dir / "train.log", "a") as f:
        f.write(json.dumps(entry) + "\n")
    if _score(scores) > best["score"]:
        best = {"score": _score(scores), **entry}
        vocabulary = (data_dir / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
        mixed = json.loads((data_dir / "mixed.json").read_text())
        save_checkpoint(model, vocabulary, mixed, out_dir / "tagger.pt")
    return best


def save_checkpoint(model: Tagger, vocabulary: list[str], mixed: dict, path: Path) -> None:
    """The network's config and weights, its vocabulary and mixed forms, in one file."""
    checkpoint = {
        "config": asdict(model.config),
        "state_dict": model.state_dict(),
        "vocabulary": vocabulary,
        "mixed": mixed,
    }
    torch.save(checkpoint, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def load_checkpoint(path: str | Path) -> tuple[Tagger, dict]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = Tagger(TaggerConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint


def export(checkpoint: str | Path, out_dir: str | Path, half: bool = True) -> Path:
    """The model folder: model.onnx (weights stored as float16 with `half`), vocab.txt,
    labels.json (cases, marks, mixed forms, the network's config)."""
    model, saved = load_checkpoint(checkpoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 12, dtype=torch.int64)  # (B, T) word ids
    axes = {name: {0: "batch", 1: "time"} for name in ("word_ids", "case_logits", "punct_logits")}
    export_small_graph(model, example, out_dir / MODEL_FILE, axes, half)
    (out_dir / VOCAB_FILE).write_text("\n".join(saved["vocabulary"]) + "\n", encoding="utf-8")
    labels = {
        "cases": list(data.CASES),
        "puncts": list(data.PUNCTS),
        "mixed": saved["mixed"],
        "tagger": saved["config"],
    }
    (out_dir / LABELS_FILE).write_text(json.dumps(labels, indent=1, ensure_ascii=False))
    return out_dir
