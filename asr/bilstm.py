"""What the small token networks share (the G2P model, the punctuation tagger, the word
LSTM LM): the checks of their sizes, their bidirectional LSTM over token embeddings, and
their optimizer step."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["bidirectional_lstm", "check_sizes", "optimizer_step"]


def check_sizes(config, section: str, sizes: tuple[str, ...]) -> None:
    """ValueError naming `section.field` for a size below 1 or a dropout outside [0, 1)."""
    for name in sizes:
        if getattr(config, name) < 1:
            raise ValueError(f"{section}.{name} must be >= 1, got {getattr(config, name)}")
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"{section}.dropout must be in [0, 1), got {config.dropout}")


def bidirectional_lstm(config) -> nn.LSTM:
    """(B, T, embed_dim) -> (B, T, 2 * hidden): `layers` layers, dropout between them."""
    return nn.LSTM(
        config.embed_dim,
        config.hidden,
        num_layers=config.layers,
        batch_first=True,
        bidirectional=True,
        dropout=config.dropout if config.layers > 1 else 0.0,
    )


def optimizer_step(model: nn.Module, optimizer, loss, lr: float, clip: float = 5.0) -> None:
    """One update of `model` from `loss` at learning rate `lr`, the gradient norm clipped."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
