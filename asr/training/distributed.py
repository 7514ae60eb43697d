"""Process groups for DistributedDataParallel, configured by torchrun's environment.

    torchrun --nproc-per-node 8 -m asr train --config ...

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without them the
run is a single process and nothing here talks to anyone. NCCL on GPUs, Gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistContext",
    "all_reduce_sum",
    "barrier",
    "gather_objects",
    "init_distributed",
    "shutdown_distributed",
]


@dataclass(frozen=True)
class DistContext:
    rank: int = 0  # global rank of this process
    world_size: int = 1  # processes in the job
    local_rank: int = 0  # rank on this node: the GPU it drives

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, logs and plots."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun describes; return the context and this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistContext(), device
    ctx = DistContext(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            rank=ctx.rank,
            world_size=ctx.world_size,
            device_id=device if device.type == "cuda" else None,
        )
    return ctx, device


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum across ranks (a copy; the input is unchanged); identity in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    device = values.device
    if dist.get_backend() == "nccl":  # NCCL reduces CUDA tensors only
        device = torch.device("cuda", torch.cuda.current_device())
    total = values.to(device, copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(values.device)


def gather_objects(obj: object) -> list:
    """[obj of rank 0, obj of rank 1, ...]; [obj] in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown_distributed() -> None:
    """Wait for every rank, then leave the process group (before the interpreter exits).

    A rank that exits while holding its Gloo group can abort in the group's destructor
    ("terminate called without an active exception") while rank 0 is still writing.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
