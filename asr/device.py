"""Choosing the device and the autocast precision."""

from __future__ import annotations

import contextlib

import torch

from asr.config import ConfigError

__all__ = ["autocast", "resolve_device", "resolve_precision"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """ "auto" is CUDA when torch sees a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA device")
    try:
        return torch.device(name)
    except RuntimeError:  # torch's own words list every device type it knows
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from None


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """Autocast dtype of "fp32", "bf16", "fp16", or "auto": bf16 where the hardware has it
    (a GPU with bf16, a CPU with AVX512-BF16/AMX), else fp16 on a GPU and fp32 on a CPU.

    On an AVX512-BF16/AMX CPU, bf16 autocast runs the reference LSTM on equal-length batches
    about 1.5x faster than fp32 (benchmarks/speed.py); docs/training.md has a case where it
    is slower.
    """
    if name in _DTYPES:
        return _DTYPES[name]
    if name != "auto":
        raise ValueError(f"precision must be one of {[*_DTYPES, 'auto']}, got {name!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed-precision context for `dtype`; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
