"""What the small token networks share (the G2P model, the punctuation tagger): the checks
of their sizes and their bidirectional LSTM over token embeddings."""

from __future__ import annotations

from torch import nn

__all__ = ["bidirectional_lstm", "check_sizes"]


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
