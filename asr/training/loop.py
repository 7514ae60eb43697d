"""Training a model: `train` and `fit` run an experiment's epochs, validating and
checkpointing after each (AdamW, warmup then cosine decay, the loss train.loss names).

    asr train --config recipes/quickstart/config.toml --exp-dir exp/quickstart
    torchrun --nproc-per-node 8 -m asr train --config ... --exp-dir ...   # DDP, one GPU each
    asr train --config ... --exp-dir ... --resume                        # after a crash

The experiment folder receives `config.toml` (the resolved config), `train.log` (one JSON
record per epoch), `train.txt` (the plain-text log), `curves.png` (training curves, redrawn
each epoch), `tensorboard/` (scalars), `last.pt` (full training state, also written every
`train.save_every_steps` steps so that `--resume` continues mid-epoch), `best.pt`,
`epochs/epoch-NNN.pt` (weights and metrics of each epoch, for `asr average`) and `model.pt`
(the best weights alone, for `asr transcribe`).

A stage a module: config (the experiment's settings), splits (manifests to datasets),
trainer (the run built), losses (the criterion table, one batch's loss), schedule, epoch
(the steps), validate, logs, state (checkpoints, resume), average. The names below are
re-exported from where they live.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from asr.checkpoint import CheckpointError, CheckpointWriteError
from asr.config import ConfigError, load_toml, to_toml
from asr.device import resolve_device
from asr.files import write_atomic
from asr.layout import LAST_FILE, TRAINED_FILES
from asr.training.average import average_at_end
from asr.training.config import ExperimentConfig, OptimConfig, TrainConfig
from asr.training.distributed import init_distributed, shutdown_distributed
from asr.training.epoch import NonFiniteLossError, train_one_epoch
from asr.training.logs import attach_logs, detach_logs, log_epoch
from asr.training.losses import compute_loss
from asr.training.state import experiment_lock, load_init_weights, resume_state, save_epoch
from asr.training.trainer import Trainer, build_trainer
from asr.training.validate import evaluate_loss

__all__ = [
    "ExperimentConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "TrainConfig",
    "compute_loss",
    "fit",
    "train",
]

log = logging.getLogger(__name__)


def train(
    config: str | Path,
    exp_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    init_from: str | Path | None = None,
    overwrite: bool = False,
) -> Trainer:
    """Train from a TOML experiment config, as `asr train` does (see `fit`).

    config: the TOML file (recipes/*/config.toml); overrides: "section.key=value" strings
    applied on top; exp_dir: the experiment folder, by default exp/<the config's folder>.

        import asr
        trainer = asr.train("recipes/quickstart/config.toml", "exp/q", ["optim.epochs=3"])
        print(trainer.best_wer, trainer.exp_dir / "model.pt")
    """
    cfg = load_toml(ExperimentConfig, config, list(overrides))
    exp_dir = exp_dir or Path("exp") / Path(config).resolve().parent.name
    return fit(cfg, exp_dir, resume, init_from, overwrite)


def fit(
    cfg: ExperimentConfig,
    exp_dir: str | Path,
    resume: bool = False,
    init_from: str | Path | None = None,
    overwrite: bool = False,
) -> Trainer:
    """Train for `cfg.optim.epochs` epochs, checkpointing and validating after each; the
    Trainer holds the finished run (best_wer, step, the model).

    cfg: the experiment (see `train` to read it from TOML); exp_dir: where the run's files
    go. resume: continue from `exp_dir/last.pt` (mid-epoch, exactly); init_from: start from
    another checkpoint's weights (fine-tuning). A folder already holding a trained model
    (model.pt, best.pt or last.pt) is refused unless `resume` or `overwrite`. Under
    torchrun every rank calls this.

        cfg = apply_overrides(ExperimentConfig(), ['data.train_manifest="train.jsonl"'])
        trainer = fit(cfg, "exp/x")
    """
    if resume and init_from:
        raise ConfigError("resume and init_from (--resume, --init-from) exclude each other")
    exp_dir = Path(exp_dir)
    dist, device = init_distributed(resolve_device(cfg.train.device))
    last = exp_dir / LAST_FILE
    if resume and not last.is_file():
        raise CheckpointError(f"{last}: nothing to resume from")
    trained = [n for n in TRAINED_FILES if (exp_dir / n).is_file()]
    if trained and not (resume or overwrite):
        raise ConfigError(
            f"{exp_dir} already holds a trained model ({', '.join(trained)}): continue it "
            "with --resume, replace it with --overwrite, or choose another --exp-dir"
        )
    if dist.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
    if not dist.is_main:
        logging.getLogger("asr").setLevel(logging.WARNING)  # one voice: rank 0's
    with experiment_lock(exp_dir, dist.is_main):
        trainer = _fit_locked(cfg, exp_dir, dist, device, resume, init_from)
    shutdown_distributed()  # on success only: a failed rank must not wait for the others
    return trainer


def _fit_locked(cfg, exp_dir: Path, dist, device, resume: bool, init_from) -> Trainer:
    """Build the run and train it, its logs attached for the duration."""
    tr = build_trainer(cfg, exp_dir, dist, device, estimate_stats=not resume)
    handler = attach_logs(tr)
    try:
        _start(tr, resume, init_from)
        run_epochs(tr)
    except CheckpointWriteError as err:
        raise CheckpointWriteError(
            f"{err}. The checkpoints written before survive; free space, then continue "
            f"with `asr train --config <config> --exp-dir {exp_dir} --resume`"
        ) from err
    finally:
        detach_logs(tr, handler)
    return tr


def _start(tr: Trainer, resume: bool, init_from: str | Path | None) -> None:
    """Continue from last.pt or start from another model's weights, then write config.toml
    and say what trains."""
    if resume:
        resume_state(tr, tr.exp_dir / LAST_FILE)
    elif init_from:
        load_init_weights(tr, init_from)
    if tr.dist.is_main:  # once what it continues from is accepted: a refusal changes nothing
        write_atomic(tr.exp_dir / "config.toml", to_toml(tr.cfg))
    params = sum(p.numel() for p in tr.model.parameters())
    log.info(
        "model: %.2fM parameters; device %s, %s; %d process(es)",
        params / 1e6,
        tr.device,
        tr.dtype,
        tr.dist.world_size,
    )
    log.info("loss: %s", tr.cfg.train.loss)


def run_epochs(tr: Trainer) -> None:
    """Train, validate and checkpoint epoch after epoch from where `tr` stands, up to
    optim.epochs or train.stop_at_wer; then train.average_last's averaged.pt."""
    cfg = tr.cfg
    while tr.epoch < cfg.optim.epochs:
        metrics = {"epoch": tr.epoch + 1, **train_one_epoch(tr)}
        if tr.valid_loader is not None:
            metrics.update(evaluate_loss(tr))
        tr.epoch += 1
        tr.position = 0
        save_epoch(tr, metrics)
        log_epoch(tr, metrics)
        if metrics.get("valid_wer", math.inf) <= cfg.train.stop_at_wer:
            log.info("validation WER %.4f <= train.stop_at_wer: stopping", metrics["valid_wer"])
            break
    if cfg.train.average_last > 0 and tr.dist.is_main:
        average_at_end(tr.exp_dir, cfg.train.average_last, cfg.train.average_by, tr.epoch)
