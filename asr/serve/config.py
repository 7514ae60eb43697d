"""`asr serve`'s limits and address, without the server's dependencies: the CLI builds the
serve flags from these fields (their help and defaults written once, here)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from asr.config import ConfigError, option
from asr.inference.segment import SegmentConfig

__all__ = ["ServeConfig"]

# Limits of the fields: integers at least this; numbers finite and above 0 (seconds, MiB).
_LEAST = {
    "workers": 1,
    "batch_size": 1,
    "max_hotwords": 0,
    "max_streams": 1,
    "max_connections": 1,
    "max_queue": 0,
}
_POSITIVE = (
    "max_upload_mb",
    "timeout",
    "max_audio_seconds",
    "read_timeout",
    "head_timeout",
    "stream_idle_timeout",
    "max_stream_seconds",
)


@dataclass(frozen=True)
class ServeConfig:
    host: str = option("127.0.0.1", "another than loopback exposes the server")
    port: int = option(8000, "TCP port")
    workers: int = option(1, "recognitions running at once (threads sharing the one model)")
    max_queue: int = option(8, "requests waiting for a worker; more get 503")
    max_upload_mb: float = option(100.0, "MiB; larger request bodies get 413, unread")
    timeout: float = option(300.0, "seconds per request, waiting included; then 504")
    max_seconds: float = option(
        SegmentConfig.max_seconds, "longer recordings are split at pauses (as asr transcribe)"
    )
    batch_size: int = option(8, "chunks of a long recording decoded together", cli=False)
    upload_dir: str | None = option(None, "where uploads are spooled (default: the temp folder)")
    max_hotwords: int = option(1000, "entries of a request's hotwords and prompt; more get 400")
    max_audio_seconds: float = option(
        7200.0, "longest audio a request may decode to, read from its header (413)"
    )
    read_timeout: float = option(30.0, "seconds an upload may send nothing; then 408, closed")
    max_connections: int = option(64, "connections at once; more are answered 503")
    head_timeout: float = option(
        10.0, "seconds a connection may take to send a whole request head; then closed (408)"
    )
    max_streams: int = option(4, "live streams at once (/v1/stream and Wyoming); more are refused")
    stream_idle_timeout: float = option(
        15.0, "seconds a live stream may wait without audio (pings earn none); then closed"
    )
    max_stream_seconds: float = option(3600.0, "seconds of audio one live stream may send")
    stream_model: str | None = option(
        None,
        "the model of live streams (/v1/stream, the page's live text); default: the bundled "
        "en-stream when no --model is given, else --model itself where it can stream",
    )
    wyoming_port: int | None = option(
        None, "also speak the Wyoming protocol (Home Assistant) on this TCP port"
    )
    allow_host: tuple[str, ...] = option(
        (), "another Host name to answer (repeatable; loopback names and --host always are)"
    )
    allow_origin: tuple[str, ...] = option(
        (), "a web origin whose pages may call the server (repeatable; e.g. http://app:3000)"
    )

    def __post_init__(self) -> None:
        for name, low in _LEAST.items():
            value = getattr(self, name)
            if value < low:
                raise ConfigError(f"serve.{name} must be >= {low}, got {value}")
        for name in _POSITIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"serve.{name} must be a finite number > 0, got {value}")
        for name in ("port", "wyoming_port"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 65536:
                raise ConfigError(f"serve.{name} must be in 1..65535, got {value}")
        object.__setattr__(self, "allow_host", tuple(h.lower() for h in self.allow_host))
        object.__setattr__(
            self, "allow_origin", tuple(o.lower().rstrip("/") for o in self.allow_origin)
        )
        try:
            SegmentConfig(max_seconds=self.max_seconds)  # validates it
        except ValueError as err:
            raise ConfigError(f"serve.max_seconds: {err}") from None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
