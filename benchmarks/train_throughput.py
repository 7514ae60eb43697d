"""Training throughput: the full loop against the model alone, in one run.

    python -m benchmarks.train_throughput --manifest data/manifests/train.jsonl --steps 30
    python -m benchmarks.train_throughput --steps 6 --max-batch-seconds 30   # tone corpus, CPU

Full loop: DataLoader workers (audio decoding, speed perturbation, noise), batched log-mel
features and SpecAugment on the device, the reference model (3 x 320 BiLSTM, x4
subsampling), CTC loss, backward, clipping, AdamW. Model only: the same model, loss and
optimizer on synthetic equal-length feature batches of the same padded duration (no
loader, no features, no padding). The two alternate in rounds within one process, so that
a change of machine load weighs on both alike. Both report seconds of real audio trained
per second; the target is full / model-only >= 0.85. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from asr.config import apply_overrides
from asr.corpora.tones import make_tone_corpus
from asr.device import autocast
from asr.training.loop import ExperimentConfig, build_trainer, train_step


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--manifest", default=None, help="training manifest (default: tone corpus)")
    p.add_argument("--tones", type=int, default=400, help="tone utterances when no manifest")
    p.add_argument("--max-batch-seconds", type=float, default=60.0, help="padded audio/batch")
    p.add_argument("--steps", type=int, default=20, help="timed steps of each loop")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each")
    p.add_argument("--rounds", type=int, default=4, help="alternations of the two loops")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default="auto", help="fp32, bf16, fp16 or auto")
    p.add_argument("--no-augment", action="store_true", help="full loop without augmentation")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="config k=v")
    return p.parse_args()


def make_config(args: argparse.Namespace, manifest: str) -> ExperimentConfig:
    augment = not args.no_augment
    overrides = [
        f'data.train_manifest="{manifest}"',
        f"data.max_batch_seconds={args.max_batch_seconds}",
        f"data.num_workers={args.num_workers}",
        f'train.device="{args.device}"',
        f'train.precision="{args.precision}"',
        "train.stats_utterances=50",
        "train.save_every_steps=0",
        "train.tensorboard=false",
        f"augment.spec_augment={str(augment).lower()}",
        f"augment.speed_perturb={str(augment).lower()}",
        f"augment.noise_prob={0.5 if augment else 0.0}",
        *args.overrides,
    ]
    return apply_overrides(ExperimentConfig(), overrides)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def endless_batches(tr):
    """The training loader's batches, epoch after epoch."""
    epoch = 0
    while True:
        tr.train_loader.batch_sampler.set_epoch(epoch)
        if hasattr(tr.train_loader.dataset, "epoch"):
            tr.train_loader.dataset.epoch = epoch
        yield from tr.train_loader
        epoch += 1


@dataclass
class Meter:
    seconds: float = 0.0  # wall time of the timed steps
    audio: float = 0.0  # real audio seconds they trained on
    real: int = 0  # real samples (full loop)
    padded: int = 0  # padded samples (full loop)


def full_steps(tr, ctc, batches, steps: int, meter: Meter) -> None:
    """`steps` steps of the real loop: next batch from the workers, features, step."""
    tr.model.train()
    _sync(tr.device)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(batches)
        train_step(tr, ctc, [batch])
        meter.audio += float(batch.wave_lens.sum()) / tr.cfg.features.sample_rate
        meter.real += int(batch.wave_lens.sum())
        meter.padded += batch.waveforms.numel()
    _sync(tr.device)
    meter.seconds += time.perf_counter() - start


def synthetic_batch(tr, utt_seconds: float) -> tuple[torch.Tensor, ...]:
    """Equal-length random features and targets filling max_batch_seconds."""
    cfg = tr.cfg
    batch_size = max(1, int(cfg.data.max_batch_seconds // utt_seconds))
    frames = int(utt_seconds * cfg.features.sample_rate / cfg.features.hop_length)
    feats = torch.randn(batch_size, frames, cfg.features.n_mels, device=tr.device)  # (B, T, F)
    feat_lens = torch.full((batch_size,), frames, device=tr.device)
    target_len = max(1, int(12 * utt_seconds))  # about 12 characters per second of speech
    targets = torch.randint(1, len(tr.vocab), (batch_size, target_len), device=tr.device)
    target_lens = torch.full((batch_size,), target_len, device=tr.device)
    return feats, feat_lens, targets, target_lens


def model_steps(tr, ctc, batch, steps: int, utt_seconds: float, meter: Meter) -> None:
    """`steps` steps of model, loss and optimizer alone on one synthetic batch."""
    feats, feat_lens, targets, target_lens = batch
    tr.model.train()
    _sync(tr.device)
    start = time.perf_counter()
    for _ in range(steps):
        tr.optimizer.zero_grad(set_to_none=True)
        with autocast(tr.device, tr.dtype):
            log_probs, out_lens = tr.model(feats, feat_lens)  # (B, T', V), (B,)
        loss = ctc(log_probs.transpose(0, 1), targets, out_lens, target_lens) / len(feats)
        tr.scaler.scale(loss).backward()
        tr.scaler.unscale_(tr.optimizer)
        nn.utils.clip_grad_norm_(tr.model.parameters(), tr.cfg.optim.grad_clip)
        tr.scaler.step(tr.optimizer)
        tr.scaler.update()
    _sync(tr.device)
    meter.seconds += time.perf_counter() - start
    meter.audio += steps * len(feats) * utt_seconds


def main() -> None:
    args = parse_args()
    manifest = args.manifest
    if manifest is None:
        folder = Path("exp/bench_tones")
        manifest = folder / "manifest.jsonl"
        if not manifest.is_file():
            make_tone_corpus(folder, args.tones, seed=0)
    cfg = make_config(args, str(manifest))
    tr = build_trainer(cfg, Path("exp/bench_throughput"))
    ctc = nn.CTCLoss(blank=tr.vocab.blank_id, reduction="sum", zero_infinity=True)
    durations = [u.duration for u in tr.train_loader.dataset.utterances]
    mean_seconds = sum(durations) / len(durations)
    params = sum(p.numel() for p in tr.model.parameters()) / 1e6
    print(f"device {tr.device}, {tr.dtype}, model {params:.2f}M parameters")
    print(
        f"batches <= {cfg.data.max_batch_seconds:g} s padded audio, mean utterance "
        f"{mean_seconds:.2f} s, {args.num_workers} workers, augmentation {not args.no_augment}"
    )
    batches, synthetic = endless_batches(tr), synthetic_batch(tr, mean_seconds)
    full_steps(tr, ctc, batches, args.warmup, Meter())
    model_steps(tr, ctc, synthetic, args.warmup, mean_seconds, Meter())
    full, only = Meter(), Meter()
    # Alternate in rounds so that load from other processes weighs on both alike.
    per_round = math.ceil(args.steps / args.rounds)
    for _ in range(args.rounds):
        full_steps(tr, ctc, batches, per_round, full)
        model_steps(tr, ctc, synthetic, per_round, mean_seconds, only)
    nonpadding = full.real / full.padded
    print(f"full loop:  {full.audio / full.seconds:9.1f} audio s/s  (non-padding {nonpadding:.3f})")
    print(f"model only: {only.audio / only.seconds:9.1f} audio s/s  (synthetic equal lengths)")
    full, only = full.audio / full.seconds, only.audio / only.seconds
    ratio = full / only
    verdict = "meets" if ratio >= 0.85 else "misses"
    print(f"full / model-only = {ratio:.3f}  ({verdict} the 0.85 target)")
    if not math.isfinite(ratio):
        raise SystemExit("non-finite throughput")


if __name__ == "__main__":
    main()
