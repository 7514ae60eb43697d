"""Training curves as a PNG, drawn from the experiment's `train.log` (one JSON per epoch)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["plot_training_curves"]


def _read_log(path: Path) -> list[dict]:
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not a JSON record ({err.msg})") from err
    return records


def _series(records: list[dict], key: str, scale: float = 1.0) -> list[float]:
    """Values of `key` per epoch, NaN (a gap in the line) where an epoch lacks it."""
    return [scale * r[key] if key in r else float("nan") for r in records]


def plot_training_curves(log_path: str | Path, out_path: str | Path) -> Path:
    """Loss (train, valid), WER/CER and throughput per epoch -> PNG at `out_path`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    records = _read_log(Path(log_path))
    epochs = [r["epoch"] for r in records]
    fig, (ax_loss, ax_err, ax_speed) = plt.subplots(1, 3, figsize=(13, 3.6))
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        ax_loss.plot(epochs, _series(records, key), marker="o", label=label)
    ax_loss.set(title="CTC loss per utterance", xlabel="epoch")
    ax_loss.legend()
    for key, label in (("valid_wer", "WER"), ("valid_cer", "CER")):
        ax_err.plot(epochs, _series(records, key, 100.0), marker="o", label=label)
    ax_err.set(title="validation error rate (%)", xlabel="epoch")
    ax_err.legend()
    ax_speed.plot(epochs, _series(records, "audio_seconds_per_second"), marker="o")
    ax_speed.set(title="training speed (audio s / s)", xlabel="epoch")
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
