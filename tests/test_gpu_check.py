"""benchmarks/gpu_check.sh, the GPU machine's one check, runs every step on the CPU here (a
tiny model, a few steps), so that it cannot rot between the times a GPU is lent; and
benchmarks/train_throughput.py sizes its synthetic batch as the config batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr.training.data import DataConfig
from benchmarks.train_throughput import utterances_per_batch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "data, expected",
    [
        (DataConfig(max_batch_seconds=192.0), 12),  # 192 s of 16 s utterances
        (DataConfig(max_batch_seconds=10.0), 1),  # never an empty batch
        (DataConfig(max_batch_seconds=0.0, batch_size=32), 32),  # counted (the 960 h config)
    ],
)
def test_the_synthetic_batch_holds_what_a_real_batch_holds(data, expected):
    assert utterances_per_batch(data, 16.0) == expected


@pytest.mark.slow
def test_gpu_check_runs_every_step_on_the_cpu(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "OUT": str(tmp_path / "out")}
    env["PY"] = sys.executable
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "killed with SIGKILL after" in out or "finished before it could be killed" in out
    assert "resumed and finished" in out and (tmp_path / "out" / "train" / "model.pt").is_file()
    assert "torchrun with 1 process(es)" in out
    assert out.count("fast       model only:") == 2  # N and the count-batched 960 h config
    assert "batches of 32 utterances" in out  # the 960 h config described as it batches
    assert "x real time" in out and "gpu_check: done" in out
