"""What every live-stream protocol shares (Vosk, Wyoming, and any added beside them): the
limits (`StreamLimits`), the slots (`StreamSlots`), one client's session over
`Recognizer.stream` (`StreamSession`), and `ProtocolError`, which a protocol turns into its
own way of saying why it closes (a WebSocket close code and reason, a Wyoming `error`).

Every stream is bounded the same way: streams at once, seconds a client may go without
sending audio (`AudioBudget`: a slot is earned by audio, not by pings or empty frames),
seconds of audio a stream may hold, bytes a message may carry.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from asr.audio import StreamResampler
from asr.decode import DecodingOptions
from asr.hotwords import HotwordError, HotwordLimitError
from asr.inference.recognizer import Recognizer
from asr.inference.stream import Stream, StreamEvent
from asr.jsonsafe import JSONInputError, loads
from asr.usererror import UserError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "AudioBudget",
    "ProtocolError",
    "StreamLimits",
    "StreamSession",
    "StreamSlots",
    "check_rate",
    "close_reason",
    "json_object",
    "open_session",
    "stream_options",
]

MAX_MESSAGE_BYTES = 2**20  # one message's audio: 32 s of 16 kHz PCM; more is refused
_MIN_RATE, _MAX_RATE = 8_000, 96_000  # sample rates a client may announce
# WebSocket close codes (RFC 6455), which Wyoming's `error` events carry too: normal, policy
# broken, data of a wrong kind, too big, try again later (the server is full), server failed.
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_BAD_DATA, CLOSE_TOO_BIG, CLOSE_FULL = 1000, 1008, 1007, 1009, 1013
CLOSE_ERROR = 1011


class ProtocolError(Exception):
    """A client broke the protocol: `code` (a WebSocket close code) and why."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class StreamLimits:
    max_streams: int  # streams at once over every protocol; more are refused
    idle_timeout: float  # seconds a client may go without sending audio (AudioBudget)
    max_seconds: float  # seconds of audio one stream may send
    max_hotwords: int  # entries of a stream's hotwords (serve.max_hotwords)


class StreamSlots:
    """At most `limit` streams at once (thread-safe: every protocol takes from it)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.active = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.active -= 1


class AudioBudget:
    """A stream's slot is earned by audio: the seconds it waits for its client, less the
    seconds of audio the client sent, may reach at most `limit` (a bucket that audio at
    real time keeps full). Messages without audio (a 0-byte frame, a ping, a describe)
    earn nothing, so a client cannot hold a slot with them; a server slow to decode costs
    the client nothing, only waiting counts."""

    def __init__(self, limit: float) -> None:
        self.limit = self.left = limit

    async def wait(self, awaitable):
        """`awaitable`'s result, waited for at most the seconds left; ProtocolError (1008)
        when they run out."""
        start = time.monotonic()
        try:
            return await asyncio.wait_for(awaitable, max(self.left, 0.0))
        except TimeoutError:
            raise ProtocolError(
                CLOSE_POLICY, f"no audio received for {self.limit:g} s (audio keeps a stream)"
            ) from None
        finally:
            self.left -= time.monotonic() - start

    def heard(self, seconds: float) -> None:
        self.left = min(self.limit, self.left + seconds)


class StreamSession:
    """One client's stream: 16-bit PCM at the client's rate in, events out, limits checked."""

    def __init__(self, stream: Stream, rate: int, limits: StreamLimits) -> None:
        self.stream, self.limits = stream, limits
        self.resampler = (
            StreamResampler(rate, stream.sample_rate) if rate != stream.sample_rate else None
        )
        self.rate = rate
        self.said: list[str] = []  # final texts of the utterances so far (Wyoming's transcript)

    def accept(self, data: bytes) -> list[StreamEvent]:
        if len(data) > MAX_MESSAGE_BYTES:
            raise ProtocolError(
                CLOSE_TOO_BIG, f"a message of {len(data)} bytes (at most {MAX_MESSAGE_BYTES})"
            )
        if len(data) % 2:
            raise ProtocolError(
                CLOSE_BAD_DATA, f"16-bit PCM comes in whole samples: {len(data)} bytes"
            )
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        if self.resampler is not None:
            samples = self.resampler.push(samples)
        if self.stream.seconds + len(samples) / self.stream.sample_rate > self.limits.max_seconds:
            raise ProtocolError(
                CLOSE_POLICY, f"a stream may hold {self.limits.max_seconds:g} s of audio"
            )
        return self.stream.accept(samples)

    def finish(self) -> list[StreamEvent]:
        events = []
        if self.resampler is not None:
            events = self.stream.accept(self.resampler.flush())
        return events + self.stream.finish()


def check_rate(value) -> int:
    """A client's sample rate: an integer in 8-96 kHz; ProtocolError otherwise."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value == int(value)):  # JSON may say NaN
        raise ProtocolError(CLOSE_BAD_DATA, f"sample_rate must be an integer, got {value!r}")
    if not _MIN_RATE <= value <= _MAX_RATE:
        raise ProtocolError(
            CLOSE_BAD_DATA, f"sample_rate {value:g} is outside {_MIN_RATE}-{_MAX_RATE} Hz"
        )
    return int(value)


def stream_options(
    recognizer: Recognizer, hotwords, limits: StreamLimits, where: str, raw=None, hints=()
) -> DecodingOptions:
    """A stream's options: the client's hotwords (a list of entries or one string of them)
    and its `raw` (true: finals as spoken words, false: written; None: the server's own)
    through the one door (`Recognizer.options`). Hotwords over a limit, or for a search that
    cannot use them, break the server's policy (1008); a wrong entry is bad data (1007), as
    is a raw that is not true or false. `hints`: weak hotwords, used where the search can
    (`Recognizer.options`)."""
    if raw is not None and not isinstance(raw, bool):
        raise ProtocolError(CLOSE_BAD_DATA, f"raw must be true or false, got {raw!r}")
    try:
        return recognizer.options(hotwords, limits.max_hotwords, hints, where=where, raw=raw)
    except HotwordLimitError as err:
        raise ProtocolError(CLOSE_POLICY, str(err)) from None
    except HotwordError as err:
        raise ProtocolError(CLOSE_BAD_DATA, str(err)) from None


def open_session(
    recognizer: Recognizer, rate, limits: StreamLimits, options: DecodingOptions | None = None
) -> StreamSession:
    """A session at the client's rate, decoding with `options` (None: the server's own; run
    in a thread: a new hotword list builds its search, the first stream loads the LM)."""
    rate = check_rate(rate)
    try:
        return StreamSession(recognizer.stream(options), rate, limits)
    except UserError as err:  # a model that cannot stream
        raise ProtocolError(CLOSE_POLICY, str(err)) from err


def close_reason(text: str) -> str:
    """A WebSocket close reason: at most 123 bytes of UTF-8 (RFC 6455), cut at a character."""
    return text.encode()[:123].decode("utf-8", "ignore")


def json_object(text: str | bytes, source: str = "a text message") -> dict:
    """A client's JSON text (a Vosk message, a Wyoming header or data) as an object; the
    one place the live-stream protocols parse JSON, by the one reader of untrusted JSON
    (`jsonsafe.loads`: bounded in size, depth and digits). ProtocolError (1007) naming
    `source` otherwise."""
    try:
        request = loads(text, source)
    except JSONInputError as err:
        raise ProtocolError(CLOSE_BAD_DATA, str(err)) from None
    if not isinstance(request, dict):
        raise ProtocolError(CLOSE_BAD_DATA, f"{source} must be a JSON object")
    return request


def is_english(language) -> bool:
    """A request's language is English: "en" in any case, with any region (en-US, en_GB);
    the one rule every protocol applies."""
    return isinstance(language, str) and language.replace("_", "-").split("-")[0].lower() == "en"
