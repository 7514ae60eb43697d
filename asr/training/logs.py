"""What a run reports: the plain-text log and TensorBoard writer of rank 0, each step's
scalars, each epoch's record and curves.png.

    handler = attach_logs(tr)
    try: ...   # train, calling log_step and log_epoch
    finally: detach_logs(tr, handler)
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr.training.trainer import Trainer

__all__ = ["attach_logs", "detach_logs", "log_epoch", "log_step"]

log = logging.getLogger(__name__)


def attach_logs(tr: Trainer) -> logging.Handler | None:
    """Rank 0: the plain-text log file and the TensorBoard writer."""
    if not tr.dist.is_main:
        return None
    handler = logging.FileHandler(tr.exp_dir / "train.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("asr").addHandler(handler)
    if tr.cfg.train.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        tr.writer = SummaryWriter(str(tr.exp_dir / "tensorboard"))
    return handler


def detach_logs(tr: Trainer, handler: logging.Handler | None) -> None:
    """Close what `attach_logs` opened."""
    if handler is not None:
        logging.getLogger("asr").removeHandler(handler)
        handler.close()
    if tr.writer is not None:
        tr.writer.close()


def log_step(tr: Trainer, step: dict) -> None:
    """A step's loss, lr and gradient norm, as TensorBoard scalars."""
    if tr.writer is None or not step["utterances"]:
        return
    tr.writer.add_scalar("train/loss", step["loss_sum"] / step["utterances"], tr.step)
    tr.writer.add_scalar("train/lr", tr.scheduler.get_last_lr()[0], tr.step)
    if math.isfinite(step["grad_norm"]):
        tr.writer.add_scalar("train/grad_norm", step["grad_norm"], tr.step)


def log_epoch(tr: Trainer, metrics: dict) -> None:
    """An epoch's metrics: the log, curves.png (from train.log) and TensorBoard."""
    log.info("epoch %d: %s", tr.epoch, json.dumps(metrics))
    if not tr.dist.is_main:
        return
    from asr.training.plots import plot_training_curves

    plot_training_curves(tr.exp_dir / "train.log", tr.exp_dir / "curves.png")
    if tr.writer is not None:
        for key, value in metrics.items():
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                section = "valid" if key.startswith("valid_") else "train"
                name = key.removeprefix("valid_").removeprefix("train_")
                tr.writer.add_scalar(f"{section}/{name}", value, tr.epoch)
        tr.writer.flush()
