"""Training throughput: today's path against the fast path, and the fast path against its
model alone, in one run.

    python -m benchmarks.train_throughput --manifest data/manifests/mini/train.jsonl \
        --config recipes/default_model/configs/e_x3_aux.toml
    python -m benchmarks.train_throughput --steps 6        # tone corpus, the default config

Fast path: the config as the recipes run it (log-mel frames from the feature cache, its
batch size, learning rate and loader); where it starts with smaller batches
(data.early_batch_epochs), those are measured as a phase of their own ("fast early"), and
the last line weighs the two phases by their epochs. Today's path: the same config with
the choices of configuration E as first trained (`TODAY`: audio decoded, speed-perturbed
and transformed by a DataLoader worker every epoch, 48 s batches). Model only: the fast
path's model, loss and optimizer on synthetic equal-length feature batches of the same
padded duration (no loader, no features, no padding). All alternate in rounds within one
process, so that a change of machine load weighs on all alike. Each reports seconds of real audio
trained per second. Prints figures; asserts nothing. The last line is `fast / today = N.NN`.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from asr.config import load_toml
from asr.corpora.tones import make_tone_corpus
from asr.device import autocast
from asr.training.config import ExperimentConfig
from asr.training.epoch import train_step
from asr.training.losses import PHONE_CTC
from asr.training.trainer import build_trainer

# Configuration E's data path and batches before the feature cache (issue 20's "today").
TODAY = (
    "data.feature_cache=false",
    "data.max_batch_seconds=48",
    "data.num_workers=1",
    "optim.lr=1e-3",
    "optim.warmup_steps=200",
    "data.early_batch_epochs=0",
)
BENCH = (  # both paths: no checkpoints, logs or statistics beyond what a step needs
    "train.stats_utterances=50",
    "train.save_every_steps=0",
    "train.tensorboard=false",
    "augment.start_epoch=0",  # augmentation on from the first timed step
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default=None, help="experiment TOML (default: built-in defaults)")
    p.add_argument("--manifest", default=None, help="training manifest (default: the config's)")
    p.add_argument("--tones", type=int, default=400, help="tone utterances when no manifest")
    p.add_argument("--steps", type=int, default=8, help="timed steps of each loop")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each")
    p.add_argument("--rounds", type=int, default=2, help="alternations of the loops")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="config k=v")
    return p.parse_args()


def make_config(args: argparse.Namespace, manifest: str, extra: tuple[str, ...]):
    overrides = [*BENCH, f'data.train_manifest="{manifest}"', 'data.valid_manifest=""']
    overrides += [*extra, *args.overrides]
    if args.config:
        return load_toml(ExperimentConfig, args.config, overrides)
    from asr.config import apply_overrides

    return apply_overrides(ExperimentConfig(), overrides)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Batches:
    """A trainer's batches, epoch after epoch, taken a round at a time: each round opens
    a fresh loader iterator where the last one stopped and closes it after, so that a
    loader worker never decodes ahead while another path is being timed."""

    def __init__(self, tr):
        self.tr, self.epoch, self.position = tr, 0, 0

    def take(self, count: int):
        loader, sampler = self.tr.train_loader, self.tr.train_loader.batch_sampler
        while count > 0:
            self.tr.epoch = self.epoch
            sampler.set_epoch(self.epoch)
            sampler.start_at(self.position)
            if hasattr(loader.dataset, "epoch"):
                loader.dataset.epoch = self.epoch
            iterator = iter(loader)
            for batch in iterator:
                self.position += 1
                count -= 1
                yield batch
                if count == 0:
                    break
            del iterator  # shuts its worker down
            if count > 0:  # the epoch ran out first
                self.epoch, self.position = self.epoch + 1, 0


@dataclass
class Meter:
    seconds: float = 0.0  # wall time of the timed steps
    audio: float = 0.0  # real audio seconds they trained on
    padded: float = 0.0  # audio + padding seconds (full loop)

    @property
    def rate(self) -> float:
        return self.audio / self.seconds if self.seconds else math.nan


def full_steps(tr, batches: Batches, steps: int, meter: Meter) -> None:
    """`steps` steps of the real loop: next batch from the loader, features, step."""
    tr.model.train()
    _sync(tr.device)
    start = time.perf_counter()
    for batch in batches.take(steps):
        train_step(tr, [batch])
        real, padded = batch.audio_seconds(tr.cfg.features)
        meter.audio += real
        meter.padded += padded
    _sync(tr.device)
    meter.seconds += time.perf_counter() - start


def utterances_per_batch(data, utt_seconds: float) -> int:
    """How many utterances of `utt_seconds` one of the config's batches holds: as many as
    fill max_batch_seconds, or data.batch_size where batches are counted (max_batch_seconds
    0, as the 960 h config)."""
    if data.max_batch_seconds > 0:
        return max(1, int(data.max_batch_seconds // utt_seconds))
    return data.batch_size


def synthetic_batch(tr, utt_seconds: float) -> tuple[torch.Tensor, ...]:
    """Equal-length random features and targets, as many utterances as a real batch."""
    cfg = tr.cfg
    batch_size = utterances_per_batch(cfg.data, utt_seconds)
    frames = int(utt_seconds * cfg.features.sample_rate / cfg.features.hop_length)
    feats = torch.randn(batch_size, frames, cfg.features.n_mels, device=tr.device)  # (B, T, F)
    feat_lens = torch.full((batch_size,), frames, device=tr.device)
    target_len = max(1, int(12 * utt_seconds))  # about 12 characters per second of speech
    targets = torch.randint(1, len(tr.vocab), (batch_size, target_len), device=tr.device)
    target_lens = torch.full((batch_size,), target_len, device=tr.device)
    return feats, feat_lens, targets, target_lens


def model_steps(tr, batch, steps: int, utt_seconds: float, meter: Meter) -> None:
    """`steps` steps of model, the run's criterion and optimizer alone on one synthetic
    batch."""
    feats, feat_lens, targets, target_lens = batch
    tr.model.train()
    with_aux = tr.raw_model.aux_output is not None and tr.cfg.train.aux_weight > 0
    _sync(tr.device)
    start = time.perf_counter()
    for _ in range(steps):
        tr.optimizer.zero_grad(set_to_none=True)
        with autocast(tr.device, tr.dtype):
            log_probs, out_lens, *aux = tr.model(feats, feat_lens, with_aux=with_aux)
        loss = tr.criterion(log_probs.transpose(0, 1), targets, out_lens, target_lens)
        if aux:  # the phone head's loss, on stand-in targets of the same length
            aux_targets = targets.clamp(max=aux[0].shape[-1] - 1)
            loss = loss + PHONE_CTC(aux[0].transpose(0, 1), aux_targets, out_lens, target_lens)
        tr.scaler.scale(loss / len(feats)).backward()
        tr.scaler.unscale_(tr.optimizer)
        nn.utils.clip_grad_norm_(tr.model.parameters(), tr.cfg.optim.grad_clip)
        tr.scaler.step(tr.optimizer)
        tr.scaler.update()
    _sync(tr.device)
    meter.seconds += time.perf_counter() - start
    meter.audio += steps * len(feats) * utt_seconds


def describe(name: str, tr) -> None:
    data = tr.cfg.data
    if data.max_batch_seconds > 0:
        size = f"batches <= {data.max_batch_seconds:g} s"
    else:
        size = f"batches of {data.batch_size} utterances"
    print(
        f"{name}: {size}, {len(tr.train_loader)} per epoch, "
        f"feature cache {'on' if data.feature_cache else 'off'}, {data.num_workers} workers, "
        f"lr {tr.cfg.optim.lr:g}, {tr.device}, {tr.dtype}"
    )


def tone_manifest(count: int) -> str:
    folder = Path("exp/bench_tones")
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        make_tone_corpus(folder, count, seed=0)
    return str(manifest)


def fast_variants(cfg) -> dict[str, tuple[str, ...]]:
    """The fast path's phases, each as its own trainer: its early epochs' batches (when the
    config has them) and the batches of every later epoch."""
    later = ("data.early_batch_epochs=0",)
    if cfg.data.early_batch_epochs <= 0 or cfg.data.early_batch_seconds <= 0:
        return {"fast": later}
    early = (*later, f"data.max_batch_seconds={cfg.data.early_batch_seconds}")
    return {"fast early": early, "fast": later}


def whole_run_ratio(cfg, rates: dict[str, float]) -> float:
    """Today's time over the fast path's for the config's whole schedule, from the measured
    rates: its early epochs at the early rate, the rest at the later one."""
    epochs, early = cfg.optim.epochs, cfg.data.early_batch_epochs if "fast early" in rates else 0
    fast_time = early / rates.get("fast early", 1.0) + (epochs - early) / rates["fast"]
    return (epochs / rates["today"]) / fast_time


def main() -> None:
    args = parse_args()
    manifest = args.manifest or tone_manifest(args.tones)
    exp = Path(tempfile.mkdtemp(prefix="bench_throughput_"))
    cfg = make_config(args, manifest, ())
    trainers = {"today": build_trainer(make_config(args, manifest, TODAY), exp / "today")}
    for name, extra in fast_variants(cfg).items():
        trainers[name] = build_trainer(make_config(args, manifest, extra), exp / name)
    fast = trainers["fast"]
    durations = [u.duration for u in fast.train_loader.dataset.utterances]
    mean_seconds = sum(durations) / len(durations)
    params = sum(p.numel() for p in fast.model.parameters()) / 1e6
    print(f"model {params:.2f}M parameters, mean utterance {mean_seconds:.2f} s")
    for name, tr in trainers.items():
        describe(f"{name:10s}", tr)
    loops = {name: (tr, Batches(tr), Meter()) for name, tr in trainers.items()}
    synthetic, only = synthetic_batch(fast, mean_seconds), Meter()
    for tr, batches, _ in loops.values():
        full_steps(tr, batches, args.warmup, Meter())
    model_steps(fast, synthetic, args.warmup, mean_seconds, Meter())
    per_round = math.ceil(args.steps / args.rounds)
    for _ in range(args.rounds):  # alternate, so that load from elsewhere weighs on all alike
        for tr, batches, meter in loops.values():
            full_steps(tr, batches, per_round, meter)
        model_steps(fast, synthetic, per_round, mean_seconds, only)
    for name, (_, _, meter) in loops.items():
        share = meter.audio / meter.padded
        print(f"{name:10s} whole loop: {meter.rate:8.1f} audio s/s  (non-padding {share:.3f})")
    print(f"fast       model only: {only.rate:8.1f} audio s/s  (synthetic equal lengths)")
    rates = {name: meter.rate for name, (_, _, meter) in loops.items()}
    print(f"fast whole loop / model only = {rates['fast'] / only.rate:.2f}")
    print(f"fast / today, later epochs = {rates['fast'] / rates['today']:.2f}")
    ratio = whole_run_ratio(cfg, rates)
    if not math.isfinite(ratio):
        raise SystemExit("non-finite throughput")
    print(f"whole schedule ({cfg.optim.epochs} epochs, {cfg.data.early_batch_epochs} early):")
    print(f"fast / today = {ratio:.2f}")


if __name__ == "__main__":
    main()
