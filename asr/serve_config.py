"""`asr serve`'s limits and address, without the server's dependencies: the CLI builds the
serve flags from these fields (their help and defaults written once, here)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from asr.inference.segment import SegmentConfig

__all__ = ["ServeConfig"]


def _flag(default, help: str, cli: bool = True):
    """A ServeConfig field: its default and the help of its `--<name>` flag (`cli` False: no
    flag of its own)."""
    return field(default=default, metadata={"help": help, "cli": cli})


@dataclass(frozen=True)
class ServeConfig:
    host: str = _flag("127.0.0.1", "another than loopback exposes the server")
    port: int = _flag(8000, "TCP port")
    workers: int = _flag(1, "recognitions running at once (threads sharing the one model)")
    max_queue: int = _flag(8, "requests waiting for a worker; more get 503")
    max_upload_mb: float = _flag(100.0, "MiB; larger request bodies get 413, unread")
    timeout: float = _flag(300.0, "seconds per request, waiting included; then 504")
    max_seconds: float = _flag(
        SegmentConfig.max_seconds, "longer recordings are split at pauses (as asr transcribe)"
    )
    batch_size: int = _flag(8, "chunks of a long recording decoded together", cli=False)
    upload_dir: str | None = _flag(None, "where uploads are spooled (default: the temp folder)")
    max_hotwords: int = _flag(1000, "entries of a request's hotwords and prompt; more get 400")
    max_audio_seconds: float = _flag(
        7200.0, "longest audio a request may decode to, read from its header (413)"
    )
    read_timeout: float = _flag(30.0, "seconds an upload may send nothing; then 408, closed")
    max_connections: int = _flag(64, "connections at once; more are answered 503")
    max_streams: int = _flag(4, "live streams at once (/v1/stream and Wyoming); more are refused")
    stream_idle_timeout: float = _flag(15.0, "seconds a live stream may send nothing; then closed")
    max_stream_seconds: float = _flag(3600.0, "seconds of audio one live stream may send")
    wyoming_port: int | None = _flag(
        None, "also speak the Wyoming protocol (Home Assistant) on this TCP port"
    )
    allow_host: tuple[str, ...] = _flag(
        (), "another Host name to answer (repeatable; loopback names and --host always are)"
    )
    allow_origin: tuple[str, ...] = _flag(
        (), "a web origin whose pages may call the server (repeatable; e.g. http://app:3000)"
    )

    def __post_init__(self) -> None:
        for name in ("workers", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"serve.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_upload_mb", "timeout", "max_audio_seconds", "read_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"serve.{name} must be a finite number > 0, got {value}")
        if self.max_hotwords < 0:
            raise ValueError(f"serve.max_hotwords must be >= 0, got {self.max_hotwords}")
        if self.max_streams < 1:
            raise ValueError(f"serve.max_streams must be >= 1, got {self.max_streams}")
        for name in ("stream_idle_timeout", "max_stream_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"serve.{name} must be a finite number > 0, got {value}")
        if self.wyoming_port is not None and not 0 < self.wyoming_port < 65536:
            raise ValueError(f"serve.wyoming_port must be in 1..65535, got {self.wyoming_port}")
        if self.max_connections < 1:
            raise ValueError(f"serve.max_connections must be >= 1, got {self.max_connections}")
        object.__setattr__(self, "allow_host", tuple(h.lower() for h in self.allow_host))
        object.__setattr__(
            self, "allow_origin", tuple(o.lower().rstrip("/") for o in self.allow_origin)
        )
        if self.max_queue < 0:
            raise ValueError(f"serve.max_queue must be >= 0, got {self.max_queue}")
        if not 0 < self.port < 65536:
            raise ValueError(f"serve.port must be in 1..65535, got {self.port}")
        SegmentConfig(max_seconds=self.max_seconds)  # validates it

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
