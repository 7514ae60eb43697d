"""Self-describing checkpoints, written atomically and loaded without running code.

A checkpoint is a dict of tensors and plain values (config, vocabulary, feature
statistics, weights, optionally training state) saved with `torch.save` and read back
with `torch.load(weights_only=True)`, whose unpickler only rebuilds tensors and builtin
containers: a checkpoint file can never execute code. torch is imported when a checkpoint
is read or written, not with this module: the light runtime uses its CheckpointError.

`inference_payload` builds what every model checkpoint holds; training adds its state to it
(asr/training/state.py).
"""

from __future__ import annotations

import errno
import glob
from pathlib import Path
from typing import Any

from asr.files import FileWriteError, atomic_write
from asr.layout import MODEL_FILE
from asr.usererror import UserError

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "inference_payload",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "asr-checkpoint"
VERSION = 1
_REQUIRED = ("format", "version", "config", "vocab", "model", "features")


class CheckpointError(UserError, ValueError):
    """A file that is not a usable checkpoint; the message names it."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint that could not be written (a full disk, no permission); the file it
    would have replaced is untouched."""


def inference_payload(config: dict, vocab: list[str], mean, std, weights: dict) -> dict:
    """What inference needs, as a checkpoint stores it: the config as plain values (sections
    "features" and "model" at least), the vocabulary's tokens, the feature statistics (mean
    and std tensors) and the model's state dict, every tensor moved to the CPU."""
    return {
        "config": config,
        "vocab": list(vocab),
        "features": {"mean": mean.cpu(), "std": std.cpu()},
        "model": {k: v.cpu() for k, v in weights.items()},
    }


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus format tags) to `path` atomically (`files.atomic_write`:
    temporary file, fsync, rename; mode 0644 under the usual umask, like model.onnx).

    A crash mid-write leaves the previous file at `path` untouched; the temporary files a
    killed process left behind (`<name>*.tmp`) are removed by the next save of `path`.
    Raises CheckpointWriteError when the file cannot be written (e.g. the disk is full).
    """
    import torch

    path = Path(path)
    record = {"format": FORMAT, "version": VERSION, **payload}
    try:
        if path.parent.is_dir():
            for stale in path.parent.glob(f"{glob.escape(path.name)}*.tmp"):
                stale.unlink(missing_ok=True)
        with atomic_write(path, binary=True) as f:
            torch.save(record, f)
    except (FileWriteError, OSError) as err:  # OSError: a stale file that stays
        os_error = err.os_error if isinstance(err, FileWriteError) else err
        why = "the disk is full" if os_error.errno == errno.ENOSPC else str(os_error)
        raise CheckpointWriteError(
            f"{path}: cannot write the checkpoint ({why}); the file it would replace, "
            "if any, is untouched"
        ) from err


def load_checkpoint(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """Read and validate a checkpoint; raise CheckpointError naming the file otherwise.
    `map_location`: a device (name) for the tensors."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, random bytes, ...
        raise CheckpointError(f"{path}: not a readable asr checkpoint ({err})") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an asr checkpoint (no '{FORMAT}' format tag)")
    if record.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {record.get('version')}, expected {VERSION}"
        )
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return record
