"""Training: CTC loss, AdamW with warmup then cosine decay, validation WER each epoch.

    asr train --config recipes/quickstart/config.toml --exp-dir exp/quickstart

The experiment folder receives `config.toml` (the resolved config), `train.log` (one JSON
record per epoch), `last.pt` and `best.pt` (full training state) and `model.pt` (the best
weights alone, for `asr transcribe`).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.checkpoint import save_checkpoint
from asr.config import to_dict, to_toml
from asr.data import (
    Batch,
    DataConfig,
    ManifestError,
    SortedBatchSampler,
    SpeechDataset,
    collate,
    find_unreadable,
    read_manifest,
)
from asr.decode import decode
from asr.device import autocast, resolve_device, resolve_precision
from asr.features import FeatureConfig, FeatureExtractor
from asr.metrics import error_counts
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary, normalize_text

__all__ = ["ExperimentConfig", "OptimConfig", "TrainConfig", "fit"]

log = logging.getLogger(__name__)


@dataclass
class OptimConfig:
    lr: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    warmup_steps: int = 500  # linear warmup from 0 to lr
    final_lr_ratio: float = 0.05  # cosine decay ends at lr * final_lr_ratio
    grad_clip: float = 5.0  # max global gradient norm
    epochs: int = 30  # passes over the training set


@dataclass
class TrainConfig:
    seed: int = 0  # seeds python, numpy and torch
    device: str = "auto"  # "auto" (cuda when available), "cpu" or "cuda"
    precision: str = "auto"  # "fp32", "bf16", "fp16" or "auto" (bf16 where the hardware has it)
    stats_utterances: int = 500  # training utterances used to estimate feature statistics
    stop_at_wer: float = -1.0  # stop once validation WER is at or below this (< 0: never)


@dataclass
class ExperimentConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def estimate_feature_stats(
    extractor: FeatureExtractor, dataset: SpeechDataset, max_utterances: int, seed: int
) -> None:
    """Set the extractor's global mean/std from a seeded sample of training utterances."""
    indices = list(range(len(dataset)))
    random.Random(seed).shuffle(indices)
    total = torch.zeros(extractor.cfg.n_mels, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    frames = 0
    for i in tqdm(indices[:max_utterances], desc="feature statistics", leave=False, disable=None):
        waveform, _ = dataset[i]
        feats, _ = extractor.raw(waveform[None], torch.tensor([len(waveform)]))  # (1, T, F)
        feats = feats[0].double()
        total += feats.sum(0)
        total_sq += feats.square().sum(0)
        frames += feats.shape[0]
    mean = total / frames
    std = (total_sq / frames - mean.square()).clamp(min=1e-10).sqrt()
    extractor.set_global_stats(mean.float(), std.float())


def ctc_feasible(out_lens: torch.Tensor, targets: torch.Tensor, target_lens: torch.Tensor):
    """(B,) True where a CTC path exists: frames >= target length + repeated neighbours."""
    repeats = (targets[:, 1:] == targets[:, :-1]) & (targets[:, 1:] != 0)
    steps = torch.arange(1, targets.shape[1], device=targets.device)
    repeats = (repeats & (steps[None, :] < target_lens[:, None])).sum(1)
    return out_lens >= target_lens + repeats


@dataclass
class StepResult:
    loss: torch.Tensor  # summed CTC loss over feasible utterances, divided by their count
    utterances: int  # utterances that contributed
    skipped: int  # utterances whose transcript cannot fit the output frames
    log_probs: torch.Tensor  # (B, T', V) model output
    out_lens: torch.Tensor  # (B,)


def compute_loss(
    model: AcousticModel,
    extractor: FeatureExtractor,
    batch: Batch,
    ctc: nn.CTCLoss,
    device: torch.device,
    dtype: torch.dtype,
) -> StepResult:
    waveforms, wave_lens, targets, target_lens = (t.to(device) for t in batch.tensors())
    with torch.no_grad():
        feats, feat_lens = extractor(waveforms, wave_lens)  # (B, T, F), (B,)
    with autocast(device, dtype):
        log_probs, out_lens = model(feats, feat_lens)  # (B, T', V), (B,)
    ok = ctc_feasible(out_lens, targets, target_lens)
    count = int(ok.sum())
    if count == 0:
        return StepResult(log_probs.sum() * 0.0, 0, len(ok), log_probs, out_lens)
    loss = ctc(
        log_probs[ok].transpose(0, 1),  # (B, T', V) -> (T', B, V)
        targets[ok],
        out_lens[ok],
        target_lens[ok],
    )
    return StepResult(loss / count, count, len(ok) - count, log_probs, out_lens)


def make_scheduler(optimizer, cfg: OptimConfig, total_steps: int):
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * cosine

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Trainer:
    """Everything one training run holds; the functions below advance it."""

    cfg: ExperimentConfig
    exp_dir: Path
    vocab: Vocabulary
    extractor: FeatureExtractor
    model: AcousticModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: DataLoader
    valid_loader: DataLoader | None
    device: torch.device
    dtype: torch.dtype
    epoch: int = 0
    step: int = 0
    best_wer: float = math.inf
    skipped: int = 0


def make_loader(dataset: SpeechDataset, cfg: DataConfig, seed: int, shuffle: bool) -> DataLoader:
    durations = [u.duration for u in dataset.utterances]
    window = cfg.sort_window if shuffle else 10**9  # evaluation: one sorted pass
    sampler = SortedBatchSampler(durations, cfg.batch_size, window, seed)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=cfg.num_workers > 0,
    )


def load_split(
    path: str, max_duration: float, vocab: Vocabulary, sample_rate: int, skip_unreadable=False
):
    utterances = drop_unreadable(read_manifest(path), path, skip_unreadable)
    kept = [u for u in utterances if u.duration <= max_duration]
    if len(kept) < len(utterances):
        log.warning(
            "%s: skipped %d utterance(s) longer than data.max_duration=%.1f s",
            path,
            len(utterances) - len(kept),
            max_duration,
        )
    if not kept:
        raise ValueError(f"{path}: no utterances left to use")
    return SpeechDataset(kept, vocab, sample_rate)


def drop_unreadable(utterances: list, path: str, skip: bool) -> list:
    """Refuse a manifest with unreadable audio, or with `skip` report each entry left out."""
    unreadable = find_unreadable(utterances)
    if not unreadable:
        return utterances
    lines = [f"{path}:{utt.line}: {reason}" for utt, reason in unreadable]
    if not skip:
        raise ManifestError(
            f"{len(unreadable)} unreadable entr{'y' if len(lines) == 1 else 'ies'} (run "
            f"`asr data check`, or set data.skip_unreadable = true):\n" + "\n".join(lines)
        )
    for line in lines:
        log.warning("skipping unreadable entry %s", line)
    bad = {id(utt) for utt, _ in unreadable}
    return [u for u in utterances if id(u) not in bad]


def build_trainer(cfg: ExperimentConfig, exp_dir: Path) -> Trainer:
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    vocab = Vocabulary.english()
    sample_rate = cfg.features.sample_rate
    if not cfg.data.train_manifest:
        raise ValueError("data.train_manifest is not set")
    train_set = load_split(
        cfg.data.train_manifest,
        cfg.data.max_duration,
        vocab,
        sample_rate,
        cfg.data.skip_unreadable,
    )
    valid_loader = None
    if cfg.data.valid_manifest:
        valid_set = load_split(
            cfg.data.valid_manifest, math.inf, vocab, sample_rate, cfg.data.skip_unreadable
        )
        valid_loader = make_loader(valid_set, cfg.data, cfg.train.seed, shuffle=False)
    extractor = FeatureExtractor(cfg.features)
    if cfg.features.normalization == "global":
        estimate_feature_stats(extractor, train_set, cfg.train.stats_utterances, cfg.train.seed)
    extractor.to(device)
    model = AcousticModel(cfg.model, cfg.features.n_mels, len(vocab)).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    train_loader = make_loader(train_set, cfg.data, cfg.train.seed, shuffle=True)
    scheduler = make_scheduler(optimizer, cfg.optim, cfg.optim.epochs * len(train_loader))
    dtype = resolve_precision(cfg.train.precision, device)
    return Trainer(
        cfg,
        exp_dir,
        vocab,
        extractor,
        model,
        optimizer,
        scheduler,
        train_loader,
        valid_loader,
        device,
        dtype,
    )


def train_one_epoch(tr: Trainer, ctc: nn.CTCLoss) -> dict:
    tr.model.train()
    tr.train_loader.batch_sampler.set_epoch(tr.epoch)
    total_loss, total_utts, audio_seconds = 0.0, 0, 0.0
    start = time.perf_counter()
    bar = tqdm(
        tr.train_loader,
        desc=f"epoch {tr.epoch + 1}/{tr.cfg.optim.epochs}",
        unit="batch",
        disable=None,
    )
    for batch in bar:
        result = compute_loss(tr.model, tr.extractor, batch, ctc, tr.device, tr.dtype)
        tr.skipped += result.skipped
        tr.optimizer.zero_grad(set_to_none=True)
        if result.utterances:
            result.loss.backward()
            nn.utils.clip_grad_norm_(tr.model.parameters(), tr.cfg.optim.grad_clip)
            tr.optimizer.step()
        tr.scheduler.step()
        tr.step += 1
        total_loss += float(result.loss.detach()) * result.utterances
        total_utts += result.utterances
        audio_seconds += float(batch.wave_lens.sum()) / tr.cfg.features.sample_rate
        bar.set_postfix(loss=f"{float(result.loss):.3f}", lr=f"{tr.scheduler.get_last_lr()[0]:.2e}")
    elapsed = time.perf_counter() - start
    return {
        "train_loss": total_loss / max(1, total_utts),
        "audio_seconds_per_second": audio_seconds / elapsed,
        "skipped_too_long_transcripts": tr.skipped,
    }


@torch.no_grad()
def evaluate_loss(tr: Trainer, ctc: nn.CTCLoss) -> dict:
    """Validation loss, greedy WER and CER."""
    tr.model.eval()
    total_loss, total_utts, refs, hyps = 0.0, 0, [], []
    dataset = tr.valid_loader.dataset
    for indices, batch in zip(tr.valid_loader.batch_sampler, tr.valid_loader, strict=True):
        result = compute_loss(tr.model, tr.extractor, batch, ctc, tr.device, tr.dtype)
        total_loss += float(result.loss.detach()) * result.utterances
        total_utts += result.utterances
        hyps += [h.text for h in decode(result.log_probs, result.out_lens, tr.vocab)]
        refs += [normalize_text(dataset.utterances[i].text) for i in indices]
    return {
        "valid_loss": total_loss / max(1, total_utts),
        "valid_wer": error_counts(refs, hyps, "word").rate,
        "valid_cer": error_counts(refs, hyps, "char").rate,
    }


def model_payload(tr: Trainer) -> dict:
    """What inference needs: config, vocabulary, feature statistics, weights."""
    return {
        "config": to_dict(tr.cfg),
        "vocab": tr.vocab.to_list(),
        "features": {"mean": tr.extractor.mean.cpu(), "std": tr.extractor.std.cpu()},
        "model": {k: v.cpu() for k, v in tr.model.state_dict().items()},
    }


def training_payload(tr: Trainer) -> dict:
    return {
        **model_payload(tr),
        "train_state": {
            "epoch": tr.epoch,
            "step": tr.step,
            "best_wer": tr.best_wer,
            "optimizer": tr.optimizer.state_dict(),
            "scheduler": tr.scheduler.state_dict(),
        },
    }


def save_epoch(tr: Trainer, metrics: dict) -> None:
    save_checkpoint(tr.exp_dir / "last.pt", training_payload(tr))
    wer = metrics.get("valid_wer", -metrics["epoch"])  # without validation: latest is best
    if wer <= tr.best_wer:
        tr.best_wer = wer
        save_checkpoint(tr.exp_dir / "best.pt", training_payload(tr))
        save_checkpoint(tr.exp_dir / "model.pt", model_payload(tr))
    with (tr.exp_dir / "train.log").open("a") as f:
        f.write(json.dumps(metrics) + "\n")


def fit(cfg: ExperimentConfig, exp_dir: str | Path) -> Trainer:
    """Train for `cfg.optim.epochs` epochs, checkpointing and validating after each."""
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / "config.toml").write_text(to_toml(cfg))
    tr = build_trainer(cfg, exp_dir)
    params = sum(p.numel() for p in tr.model.parameters())
    log.info("model: %.2fM parameters; device %s, %s", params / 1e6, tr.device, tr.dtype)
    ctc = nn.CTCLoss(blank=tr.vocab.blank_id, reduction="sum", zero_infinity=True)
    while tr.epoch < cfg.optim.epochs:
        metrics = {"epoch": tr.epoch + 1, **train_one_epoch(tr, ctc)}
        if tr.valid_loader is not None:
            metrics.update(evaluate_loss(tr, ctc))
        tr.epoch += 1
        save_epoch(tr, metrics)
        log.info("epoch %d: %s", tr.epoch, json.dumps(metrics))
        if metrics.get("valid_wer", math.inf) <= cfg.train.stop_at_wer:
            log.info("validation WER %.4f <= train.stop_at_wer: stopping", metrics["valid_wer"])
            break
    return tr
