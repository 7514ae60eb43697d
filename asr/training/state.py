"""Training checkpoints: what each file of an experiment holds, writing them, and reading
them back to resume a run or to start from another model's weights.

- model.pt, epochs/epoch-NNN.pt: `model_payload` (asr.checkpoint.inference_payload of the
  run), plus the epoch's metrics in the epoch files.
- last.pt, best.pt: `training_payload`, the model payload plus "train_state": position,
  optimizer, scheduler, scaler and every rank's RNG state, so `resume_state` continues
  exactly where the run stopped, mid-epoch included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from asr.checkpoint import CheckpointError, inference_payload, load_checkpoint, save_checkpoint
from asr.config import ConfigError, to_dict
from asr.layout import BEST_FILE, LAST_FILE, MODEL_FILE, epoch_file
from asr.logmel import GLOBAL_STATS_NORMALIZATIONS
from asr.training.distributed import barrier, gather_objects

if TYPE_CHECKING:
    from asr.training.trainer import Trainer

__all__ = [
    "experiment_lock",
    "load_init_weights",
    "model_payload",
    "resume_state",
    "rng_state",
    "save_epoch",
    "save_last",
    "set_rng_state",
    "training_payload",
]

log = logging.getLogger(__name__)


def model_payload(tr: Trainer) -> dict:
    """What inference needs of the run: config, vocabulary, feature statistics, weights."""
    mean, std = tr.extractor.mean, tr.extractor.std
    weights = tr.raw_model.state_dict()
    return inference_payload(to_dict(tr.cfg), tr.vocab.to_list(), mean, std, weights)


def rng_state() -> dict:
    """Python, numpy and torch generator states, as tensors and builtins (weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuples(state["python"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value):
    """random.setstate wants the nested tuples that a round trip may have made lists."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


def training_payload(tr: Trainer, rng_states: list[dict]) -> dict:
    return {
        **model_payload(tr),
        "train_state": {
            "epoch": tr.epoch,
            "step": tr.step,
            "position": tr.position,
            "world_size": tr.dist.world_size,
            "best_wer": tr.best_wer,
            "nonfinite_steps": tr.nonfinite_steps,
            "skipped": tr.skipped,
            "optimizer": tr.optimizer.state_dict(),
            "scheduler": tr.scheduler.state_dict(),
            "scaler": tr.scaler.state_dict(),
            "rng": rng_states,  # one per rank
        },
    }


def save_last(tr: Trainer) -> None:
    """Write last.pt (rank 0) with every rank's RNG state: resuming continues exactly here."""
    rng_states = gather_objects(rng_state())
    if tr.dist.is_main:
        save_checkpoint(tr.exp_dir / LAST_FILE, training_payload(tr, rng_states))
    barrier()


def save_epoch(tr: Trainer, metrics: dict) -> None:
    wer = metrics.get("valid_wer", -metrics["epoch"])  # without validation: latest is best
    is_best = wer <= tr.best_wer  # metrics are reduced: every rank agrees
    tr.best_wer = min(wer, tr.best_wer)
    if tr.dist.is_main:
        save_checkpoint(
            tr.exp_dir / epoch_file(tr.epoch), {**model_payload(tr), "metrics": metrics}
        )
        if is_best:
            save_checkpoint(tr.exp_dir / BEST_FILE, training_payload(tr, []))
            save_checkpoint(tr.exp_dir / MODEL_FILE, model_payload(tr))
        append_epoch_log(tr.exp_dir / "train.log", metrics)
    # last.pt goes last: a crash before it redoes the epoch's end (deterministically)
    # rather than skipping its epoch checkpoint.
    save_last(tr)


def append_epoch_log(path: Path, metrics: dict) -> None:
    """Add an epoch's record to train.log, dropping records of this epoch or later that a
    run killed before its last.pt left (a resumed run redoes that epoch's end)."""
    kept = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                epoch = json.loads(line).get("epoch", 0)
            except (json.JSONDecodeError, AttributeError):
                continue  # a line cut by a kill
            if epoch < metrics["epoch"]:
                kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in [*kept, json.dumps(metrics)]), encoding="utf-8")
    os.replace(tmp, path)


_SUMMARY = "rnn.summary."  # model.summary_layer's weights (asr.model.UtteranceSummary)


def load_init_weights(tr: Trainer, path: str | Path) -> None:
    """Start from another model's weights and feature statistics (fine-tuning: the weights
    were learned on features normalized with those). With another vocabulary (a phone
    model from a character model's encoder) the output layer starts afresh; an auxiliary
    phone head comes along only where this run has one, and starts afresh where the other
    model has none (a character model from a phone model's encoder)."""
    record = load_checkpoint(path)
    weights = dict(record["model"])
    donor_aux = any(k.startswith("aux_output.") for k in weights)
    fresh = ["aux_output."] if tr.raw_model.aux_output is None or not donor_aux else []
    if record["vocab"] != tr.vocab.to_list():
        log.warning(
            "%s: vocabulary of %d tokens, this run's has %d: the encoder is loaded, the "
            "output layer starts afresh",
            path,
            len(record["vocab"]),
            len(tr.vocab),
        )
        fresh.append("output.")
    current = tr.raw_model.state_dict()
    if any(k.startswith(_SUMMARY) for k in current) and not any(
        k.startswith(_SUMMARY) for k in weights
    ):
        log.info("%s has no utterance summary: this run's starts at zero (adds nothing)", path)
        fresh.append(_SUMMARY)
    weights = {k: v for k, v in weights.items() if not k.startswith(tuple(fresh))}
    weights.update({k: v for k, v in current.items() if k.startswith(tuple(fresh))})
    _load_weights(tr, {**record, "model": weights}, path)
    donor_normalization = record["config"]["features"].get("normalization", "global")
    if (
        tr.cfg.features.normalization in GLOBAL_STATS_NORMALIZATIONS
        and donor_normalization in GLOBAL_STATS_NORMALIZATIONS
    ):  # a donor normalized per utterance has none: this run's own estimate stays
        device = tr.extractor.mean.device
        features = record["features"]
        tr.extractor.set_global_stats(features["mean"].to(device), features["std"].to(device))
    log.info("initialized the model from %s", path)


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


def resume_state(tr: Trainer, path: Path) -> None:
    """Restore everything `training_payload` wrote, so training continues where it stopped."""
    record = load_checkpoint(path)
    state = record.get("train_state")
    if state is None:
        raise CheckpointError(f"{path}: holds no training state to resume from")
    world_size = state.get("world_size", 1)
    if world_size != tr.dist.world_size:
        raise CheckpointError(
            f"{path}: written by {world_size} process(es), resumed with "
            f"{tr.dist.world_size}; mid-epoch positions only carry over to the same count"
        )
    changed = _changed_keys(record["config"], to_dict(tr.cfg))
    if changed:
        log.warning(
            "%s: the given config changes %s; continuing with the given values (the "
            "schedule keeps its position, at the given optim.lr)",
            path,
            ", ".join(changed),
        )
    _load_weights(tr, record, path)
    tr.extractor.set_global_stats(record["features"]["mean"], record["features"]["std"])
    tr.optimizer.load_state_dict(state["optimizer"])
    tr.scheduler.load_state_dict(state["scheduler"])
    # The restored scheduler would keep the old peak lr: the given one is what was asked for.
    tr.scheduler.base_lrs = [tr.cfg.optim.lr] * len(tr.optimizer.param_groups)
    factor = tr.scheduler.lr_lambdas[0](tr.scheduler.last_epoch)  # as LambdaLR computes it
    for group in tr.optimizer.param_groups:
        group["initial_lr"] = tr.cfg.optim.lr
        group["lr"] = tr.cfg.optim.lr * factor
    if state.get("scaler"):
        tr.scaler.load_state_dict(state["scaler"])
    tr.epoch, tr.step, tr.best_wer = state["epoch"], state["step"], state["best_wer"]
    # Checkpoints of epoch-end-only training lack these: resume at the epoch's start.
    tr.position = state.get("position", 0)
    tr.nonfinite_steps = state.get("nonfinite_steps", 0)
    tr.skipped = state.get("skipped", 0)
    if state.get("rng"):
        set_rng_state(state["rng"][tr.dist.rank])
    log.info("resumed %s: epoch %d, step %d, batch %d", path, tr.epoch + 1, tr.step, tr.position)


def _load_weights(tr: Trainer, record: dict, path: str | Path) -> None:
    try:
        tr.raw_model.load_state_dict(record["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: weights do not fit this run's [model] config ({err})"
        ) from err


LOCK_FILE = ".lock"  # in an experiment folder while a run trains there


@contextlib.contextmanager
def experiment_lock(exp_dir: Path, take: bool = True):
    """Hold `exp_dir`'s lock for the duration: a second `asr train` on the same folder is
    refused, naming the process that holds it, instead of mixing two runs' files. A lock
    whose process is gone (killed, the machine restarted) is taken over. `take` False (the
    other ranks of a torchrun job): nothing to hold."""
    if not take:
        yield
        return
    path = Path(exp_dir) / LOCK_FILE
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            _refuse_or_clear(path)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _refuse_or_clear(path: Path) -> None:
    """ConfigError when the lock's process still runs here; else remove the stale lock."""
    try:
        held = json.loads(path.read_text())
        pid, host = int(held["pid"]), str(held["host"])
    except (OSError, ValueError, KeyError, TypeError):
        held, pid, host = {}, -1, ""  # unreadable: a crash mid-write
    alive = host == socket.gethostname() and _running(pid)
    if alive or (host and host != socket.gethostname()):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(held.get("since", 0)))
        raise ConfigError(
            f"{path.parent} is in use: `asr train` process {pid} on {host} holds it since "
            f"{since}; wait for it, or remove {path} if that process is gone"
        )
    log.warning("%s: taking over a stale lock (process %d is gone)", path, pid)
    path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
