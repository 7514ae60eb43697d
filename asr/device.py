"""Choosing the device and the autocast precision."""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path

import torch

from asr.config import ConfigError

__all__ = [
    "PRECISIONS",
    "autocast",
    "check_device_name",
    "cpu_has_bf16",
    "resolve_device",
    "resolve_precision",
]

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = (*_DTYPES, "auto")  # the names resolve_precision takes
# /proc/cpuinfo: bf16 arithmetic in hardware (x86's flags; aarch64's Features say "bf16")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def check_device_name(name: str, key: str = "device") -> None:
    """ConfigError naming `key` unless `name` is "auto" or a device torch can name (whether
    this machine has it is resolve_device's question)."""
    if name == "auto":
        return
    try:
        torch.device(name)
    except RuntimeError:  # torch's own words list every device type it knows
        raise ConfigError(f"{key} {name!r}: expected auto, cpu, cuda or cuda:N") from None


def resolve_device(name: str) -> torch.device:
    """ "auto" is CUDA when torch sees a GPU, else the CPU."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA device")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """Autocast dtype of "fp32", "bf16", "fp16", or "auto": bf16 where the hardware has it
    (a GPU with bf16, a CPU with AVX512-BF16/AMX), else fp16 on a GPU and fp32 on a CPU.

    On an AVX512-BF16/AMX CPU, bf16 autocast runs the reference LSTM on equal-length batches
    about 1.5x faster than fp32 (benchmarks/speed.py); docs/training.md has a case where it
    is slower. On a CPU without them bf16 is emulated, several times slower: "bf16" asked
    for there is kept, with a warning.
    """
    if name in _DTYPES:
        if name == "bf16" and device.type == "cpu" and not cpu_has_bf16():
            log.warning(
                "precision bf16 on a CPU without AVX512-BF16 or AMX: emulated, several times "
                'slower than fp32 (train.precision = "auto" or "fp32" picks fp32 here)'
            )
        return _DTYPES[name]
    if name != "auto":
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {name!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


@functools.cache
def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX). oneDNN's own
    check (`torch.ops.mkldnn._is_mkldnn_bf16_supported`) also says yes for plain AVX512,
    where bf16 is emulated; it is the answer only where /proc/cpuinfo cannot be read."""
    try:
        info = cpuinfo.read_text()
    except OSError:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    flags = set(info.split())
    return any(flag in flags for flag in _BF16_FLAGS)


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed-precision context for `dtype`; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
