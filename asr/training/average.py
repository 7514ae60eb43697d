"""Checkpoint averaging: the mean of the weights of the last N or the best N epochs.

    asr average exp/librispeech --last 5
    asr average exp/librispeech --best 5 --out exp/librispeech/best5.pt

Reads `epochs/epoch-NNN.pt` (written by training after each epoch, with its validation
metrics) and writes a model checkpoint that `asr transcribe --model` loads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from asr.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from asr.layout import AVERAGED_FILE, EPOCHS_DIR, epoch_number

__all__ = [
    "AVERAGE_BY",
    "average_at_end",
    "average_checkpoints",
    "average_experiment",
    "epoch_checkpoints",
    "select_checkpoints",
]

log = logging.getLogger(__name__)

AVERAGE_BY = ("last", "best")  # the epochs averaged: the last N, or the N of lowest WER


def epoch_checkpoints(exp_dir: str | Path, up_to: int | None = None) -> list[Path]:
    """The experiment's per-epoch checkpoints, in epoch order; with `up_to`, those of
    epochs 1 .. up_to alone (a run's own: files of an earlier, longer run that --overwrite
    left in the folder are not its)."""
    folder = Path(exp_dir) / EPOCHS_DIR
    numbered = {}
    for path in folder.glob("epoch-*.pt"):
        epoch = epoch_number(path.name)
        if epoch is not None and (up_to is None or epoch <= up_to):
            numbered[path] = epoch
    if not numbered:
        raise CheckpointError(f"{folder}: no epoch-NNN.pt checkpoints to average")
    return sorted(numbered, key=numbered.get)


def select_checkpoints(
    exp_dir: str | Path, num: int, by: str = "last", up_to: int | None = None
) -> list[Path]:
    """The last `num` epochs, or the `num` of lowest validation WER (ties: later epoch),
    among epochs 1 .. `up_to` when given."""
    if num < 1:
        raise ValueError(f"number of checkpoints to average must be positive, got {num}")
    paths = epoch_checkpoints(exp_dir, up_to)
    if len(paths) < num:
        raise CheckpointError(f"{exp_dir}: {num} checkpoints asked for, {len(paths)} exist")
    if by == "last":
        return paths[-num:]
    if by not in AVERAGE_BY:
        raise ValueError(f"average by one of {list(AVERAGE_BY)}, got {by!r}")
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
    exp_dir: str | Path,
    num: int,
    by: str = "last",
    out: str | Path | None = None,
    up_to: int | None = None,
) -> Path:
    """Average `num` epoch checkpoints of `exp_dir` (by "last" or "best", among epochs
    1 .. `up_to` when given); return the file."""
    paths = select_checkpoints(exp_dir, num, by, up_to)
    out = Path(out) if out else Path(exp_dir) / AVERAGED_FILE
    save_checkpoint(out, average_checkpoints(paths))
    return out


def average_at_end(exp_dir: Path, asked: int, by: str, up_to: int) -> Path:
    """A finished run's train.average_last: average `asked` of its epoch checkpoints (epochs
    1 .. `up_to`) into averaged.pt; a run with fewer epochs (a short optim.epochs, an early
    stop) averages all it has, saying so: a setting never fails a run whose training is
    done."""
    num = min(asked, len(epoch_checkpoints(exp_dir, up_to=up_to)))
    if num < asked:
        log.warning(
            "train.average_last = %d, but the run has %d epoch checkpoint(s): averaging those",
            asked,
            num,
        )
    out = average_experiment(exp_dir, num, by, up_to=up_to)
    log.info("averaged %d checkpoint(s) (%s) into %s", num, by, out)
    return out
