"""The server object every protocol is handed (`Server`: the model, the limits, the queue of
recognitions and the live-stream slots) and what a protocol module gives back (`Protocol`).

A protocol module (transcriptions.py, vosk.py, wyoming.py) only translates: bytes to audio
and request fields, results and errors (HotwordError, AudioError, ProtocolError) to its own
answers. Every request's decoding options come from `server.recognizer.options(...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePath

from starlette.routing import BaseRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.inference.recognizer import Recognizer
from asr.inference.stream import StreamError
from asr.serve.config import ServeConfig
from asr.serve.streaming import (
    CLOSE_ERROR,
    CLOSE_FULL,
    CLOSE_POLICY,
    ProtocolError,
    StreamLimits,
    StreamSlots,
    close_reason,
)

__all__ = ["Protocol", "QueueFull", "RecognitionQueue", "Server", "live_connection", "model_name"]

log = logging.getLogger("asr.serve")


class QueueFull(Exception):
    pass


class RecognitionQueue:
    """At most `workers` recognitions at once and `max_queue` waiting; more are refused."""

    def __init__(self, workers: int, max_queue: int) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="asr-serve")
        self.capacity = workers + max_queue
        self.pending = 0  # submitted and not finished: running or waiting
        self._lock = threading.Lock()

    @property
    def full(self) -> bool:
        return self.pending >= self.capacity

    def submit(self, fn, /, *args) -> Future:
        with self._lock:
            if self.pending >= self.capacity:
                raise QueueFull(f"{self.pending} recognitions running or queued")
            self.pending += 1
        future = self._executor.submit(fn, *args)
        # Released when the work ends, not when its request gives up: a recognition that
        # outlives its time limit still holds its worker, and the count stays honest.
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Future) -> None:
        with self._lock:
            self.pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Server:
    """What every protocol shares: the models (decoding with their own options, each
    request's through `recognizer.options`), the limits, the recognition queue, the stream
    slots.

    `recognizer` transcribes whole recordings (HTTP uploads, Wyoming's utterances);
    `streamer`, when given, runs live streams (the Vosk WebSocket, the page's live text),
    else `recognizer` does where it can. `live` is the one they run on, None when neither
    can stream, and `live_note` says which, or why none, in a user's words."""

    recognizer: Recognizer
    config: ServeConfig = field(default_factory=ServeConfig)
    streamer: Recognizer | None = None
    queue: RecognitionQueue = field(init=False)  # whole-file recognitions (HTTP)
    stream_limits: StreamLimits = field(init=False)  # live streams, every protocol
    stream_slots: StreamSlots = field(init=False)
    live: Recognizer | None = field(init=False)
    live_note: str = field(init=False)

    def __post_init__(self) -> None:
        config = self.config
        self.queue = RecognitionQueue(config.workers, config.max_queue)
        self.stream_limits = StreamLimits(
            config.max_streams,
            config.stream_idle_timeout,
            config.max_stream_seconds,
            config.max_hotwords,
        )
        self.stream_slots = StreamSlots(config.max_streams)
        # the punctuation model loads now: one that cannot fails the start, not a request
        self.recognizer.writer(self.recognizer.default_options)
        self.live, self.live_note = _live_model(self.recognizer, self.streamer)


def model_name(recognizer: Recognizer) -> str:
    """The name clients know a model by: its folder's name ("en-phones"), the file's stem
    for a checkpoint or graph given alone, "asr" for one with no source."""
    source = PurePath(recognizer.source or "asr")
    return source.stem if source.suffix in (".pt", ".onnx") else source.name


def _live_model(recognizer: Recognizer, streamer: Recognizer | None):
    """(the model live streams run on or None, a line saying so). A stream is opened once
    here: a model that cannot stream is known at the start, and its LM is loaded."""
    model = streamer or recognizer
    try:
        model.stream()
    except StreamError as err:
        if streamer is not None:  # asked for by name: the start fails
            raise
        note = (
            f"live streams are off: {model_name(model)} cannot stream ({err}); files are "
            "transcribed. asr serve --stream-model PATH adds a streaming model"
        )
        return None, note
    return model, f"live streams: {model_name(model)}; files: {model_name(recognizer)}"


async def live_connection(
    server: Server, websocket: WebSocket, run: Callable[[], Awaitable[None]], name: str
) -> None:
    """One live-stream WebSocket (Vosk's, Realtime's) around its protocol's `run`: accepted
    first, so that a refused client reads why; refused (1008) when the server has no live
    model, (1013) when every stream slot is taken; else `run` holds a slot until it ends,
    a ProtocolError closing with its code and reason, a bug with 1011."""
    await websocket.accept()
    if server.live is None:
        model = model_name(server.recognizer)
        reason = f"live text is off: {model} cannot stream; asr serve --stream-model adds one"
        await websocket.close(CLOSE_POLICY, close_reason(reason))
        return
    slots = server.stream_slots
    if not slots.take():
        await websocket.close(CLOSE_FULL, f"{slots.limit} streams at once: try again later")
        return
    try:
        await run()
    except WebSocketDisconnect:
        log.info("%s: the client went away", name)
    except ProtocolError as err:
        log.info("%s closed: %s", name, err.reason)
        with contextlib.suppress(Exception):
            await websocket.close(err.code, close_reason(err.reason))
    except Exception:  # a bug: logged, and the client told so, not left hanging
        log.exception("%s failed", name)
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_ERROR, "internal error")
    finally:
        slots.give()


# A protocol's own listener (Wyoming's TCP port): started with the app, closed at its end;
# None when the configuration does not ask for it.
Listener = Callable[[Server], Awaitable[asyncio.AbstractServer | None]]


@dataclass(frozen=True)
class Protocol:
    """What a protocol module gives the server (its `PROTOCOL`, listed in app.PROTOCOLS)."""

    routes: Callable[[Server], list[BaseRoute]]  # its HTTP and WebSocket endpoints
    listen: Listener | None = None  # its own port, outside the HTTP server
