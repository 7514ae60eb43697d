"""Training and transcription speed of the reference model on this machine.

    python benchmarks/speed.py                     # both figures, fp32 and bf16 training
    python benchmarks/speed.py --train-steps 10 --files 20

Reference model: x4 convolutional subsampling, 3 bidirectional LSTM layers of 320 units.
- training: seconds of audio per second for batches of 16 x 10 s utterances
  (features, forward, CTC loss, backward, AdamW step), per autocast precision;
- transcription: real-time factor end to end for 10-second WAV files one at a time
  (file read, features, model, greedy decoding), through `Recognizer.transcribe`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from asr.device import resolve_precision
from asr.features import FeatureConfig, FeatureExtractor
from asr.inference.recognizer import Recognizer
from asr.inference.runtime_torch import TorchRunner
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.training.config import TrainConfig
from asr.training.data import Batch
from asr.training.losses import compute_loss, make_criterion

SAMPLE_RATE = 16_000


def make_batch(batch_size: int, seconds: float, rng: np.random.Generator) -> Batch:
    samples = int(seconds * SAMPLE_RATE)
    waveforms = torch.from_numpy(0.1 * rng.standard_normal((batch_size, samples), np.float32))
    targets = torch.from_numpy(rng.integers(1, 29, (batch_size, 150)))  # ~15 chars/s
    lens = torch.full((batch_size,), samples)
    return Batch(waveforms, lens, targets, torch.full((batch_size,), 150))


def train_speed(model, extractor, precision: str, steps: int, batch_size: int, seconds: float):
    """Seconds of audio per wall second over `steps` optimizer steps, after one warm-up."""
    device = torch.device("cpu")
    dtype = resolve_precision(precision, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = make_criterion(TrainConfig(), Vocabulary.english(), [])  # train.loss's default
    batch = make_batch(batch_size, seconds, np.random.default_rng(0))
    model.train()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        result = compute_loss(model, extractor, batch, criterion, device, dtype)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        times.append(time.perf_counter() - start)
    step = float(np.median(times[1:]))
    return batch_size * seconds / step, step


def transcribe_speed(model, extractor, files: int, seconds: float) -> tuple[float, float]:
    """Real-time factor (audio seconds per wall second) transcribing files one at a time."""
    recognizer = Recognizer(TorchRunner(extractor, model, Vocabulary.english(), "cpu"))
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(files + 1):
            path = Path(tmp) / f"{i}.wav"
            sf.write(path, 0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE)), SAMPLE_RATE)
            paths.append(path)
        recognizer.transcribe([paths[0]])  # warm-up
        per_file = []
        for path in paths[1:]:
            start = time.perf_counter()
            recognizer.transcribe([path])
            per_file.append(time.perf_counter() - start)
    median = float(np.median(per_file))
    return seconds / median, median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-steps", type=int, default=6, help="timed training steps")
    parser.add_argument("--files", type=int, default=20, help="timed 10-second files")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16], help="training")
    parser.add_argument("--seconds", type=float, default=10.0, help="training utterance length")
    args = parser.parse_args()

    torch.manual_seed(0)
    extractor = FeatureExtractor(FeatureConfig())
    model = AcousticModel(ModelConfig(), extractor.cfg.n_mels, len(Vocabulary.english()))
    params = sum(p.numel() for p in model.parameters())
    print(
        f"reference model: {params:,} parameters; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    for precision in args.precisions:
        for size in args.batch_sizes:
            steps, seconds = args.train_steps, args.seconds
            rate, step = train_speed(model, extractor, precision, steps, size, seconds)
            print(
                f"training  {precision:>4}: {rate:7.1f} s of audio per s  "
                f"({step:.3f} s per {size} x {args.seconds:g} s batch)"
            )
    rtf, per_file = transcribe_speed(model, extractor, args.files, 10.0)
    print(f"transcribe fp32: {rtf:7.1f} x real time  ({1000 * per_file:.1f} ms per 10 s file)")


if __name__ == "__main__":
    main()
