"""Checkpoint averaging: the mean of the weights of the last N or the best N epochs.

    asr average exp/librispeech --last 5
    asr average exp/librispeech --best 5 --out exp/librispeech/best5.pt

Reads `epochs/epoch-NNN.pt` (written by training after each epoch, with its validation
metrics) and writes a model checkpoint that `asr transcribe --model` loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from asr.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["average_checkpoints", "average_experiment", "epoch_checkpoints", "select_checkpoints"]

_EPOCH_FILE = re.compile(r"epoch-(\d+)\.pt")


def epoch_checkpoints(exp_dir: str | Path) -> list[Path]:
    """The experiment's per-epoch checkpoints, in epoch order."""
    folder = Path(exp_dir) / "epochs"
    found = [p for p in folder.glob("epoch-*.pt") if _EPOCH_FILE.fullmatch(p.name)]
    if not found:
        raise CheckpointError(f"{folder}: no epoch-NNN.pt checkpoints to average")
    return sorted(found, key=lambda p: int(_EPOCH_FILE.fullmatch(p.name).group(1)))


def select_checkpoints(exp_dir: str | Path, num: int, by: str = "last") -> list[Path]:
    """The last `num` epochs, or the `num` of lowest validation WER (ties: later epoch)."""
    if num < 1:
        raise ValueError(f"number of checkpoints to average must be positive, got {num}")
    paths = epoch_checkpoints(exp_dir)
    if len(paths) < num:
        raise CheckpointError(f"{exp_dir}: {num} checkpoints asked for, {len(paths)} exist")
    if by == "last":
        return paths[-num:]
    if by != "best":
        raise ValueError(f"average by 'last' or 'best', got {by!r}")
    wers = {}
    for i, path in enumerate(paths):
        metrics = load_checkpoint(path).get("metrics", {})
        if "valid_wer" not in metrics:
            raise CheckpointError(f"{path}: no validation WER stored; use --last")
        wers[path] = (metrics["valid_wer"], -i)
    return sorted(sorted(paths, key=wers.get)[:num], key=paths.index)


def average_checkpoints(paths: Sequence[str | Path]) -> dict:
    """Model payload of the first checkpoint with floating-point weights averaged over all.

    Integer buffers (none in the acoustic model today) are taken from the last checkpoint.
    """
    if not paths:
        raise ValueError("no checkpoints to average")
    records = [load_checkpoint(p) for p in paths]
    first = records[0]
    for path, record in zip(paths[1:], records[1:], strict=True):
        if record["vocab"] != first["vocab"] or record["model"].keys() != first["model"].keys():
            raise CheckpointError(f"{path}: different vocabulary or model than {paths[0]}")
    averaged = {}
    for name, tensor in first["model"].items():
        if tensor.is_floating_point():
            stacked = torch.stack([r["model"][name].double() for r in records])
            averaged[name] = stacked.mean(0).to(tensor.dtype)
        else:
            averaged[name] = records[-1]["model"][name]
    return {
        "config": first["config"],
        "vocab": first["vocab"],
        "features": first["features"],
        "model": averaged,
        "averaged_from": [str(p) for p in paths],
    }


def average_experiment(
    exp_dir: str | Path, num: int, by: str = "last", out: str | Path | None = None
) -> Path:
    """Average `num` epoch checkpoints of `exp_dir` (by "last" or "best"); return the file."""
    paths = select_checkpoints(exp_dir, num, by)
    out = Path(out) if out else Path(exp_dir) / "averaged.pt"
    save_checkpoint(out, average_checkpoints(paths))
    return out
