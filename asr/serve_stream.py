"""Live transcription for `asr serve`: the Vosk WebSocket protocol at /v1/stream and the
Wyoming protocol (Home Assistant's) on its own TCP port, both over `Recognizer.stream`.

Vosk (alphacep/vosk-server's websocket/asr_server.py, which Vosk's clients speak):

    -> {"config": {"sample_rate": 16000, "words": true,     text, optional, first
                   "hotwords": ["Nautilus", "Captain Nemo:8"]}}
    -> <16-bit little-endian mono PCM>                        binary, any length
    <- {"partial": "the old man"}                             the text so far changed
    <- {"text": "...", "result": [{"word", "start", "end", "conf"}]}   at a pause
    -> {"eof": 1}                                             text: the end of the audio
    <- {"text": "..."}                                        the last result, then closed

Wyoming (PyPI `wyoming`: a JSON header line, then `data_length` bytes of JSON data and
`payload_length` bytes of payload): `describe` -> `info`; `transcribe`, `audio-start`,
`audio-chunk`..., `audio-stop` -> `transcript`.

Both are bounded the same way (`StreamLimits`): streams at once, seconds a client may send
nothing, seconds of audio a stream may hold, bytes a message may carry. A client that breaks
a rule is told why (a WebSocket close code and reason; a Wyoming `error` event) and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.audio import StreamResampler
from asr.decode import DecodingOptions
from asr.hotwords import HotwordError, HotwordLimitError
from asr.inference.stream import Stream, StreamEvent
from asr.usererror import UserError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "StreamLimits",
    "StreamSlots",
    "vosk_stream",
    "wyoming_server",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 2**20  # one message's audio: 32 s of 16 kHz PCM; more is refused
_MIN_RATE, _MAX_RATE = 8_000, 96_000  # sample rates a client may announce
# WebSocket close codes (RFC 6455): normal, policy broken, data of a wrong kind, too big,
# try again later (the server is full).
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_BAD_DATA, CLOSE_TOO_BIG, CLOSE_FULL = 1000, 1008, 1007, 1009, 1013
CLOSE_ERROR = 1011  # the server failed


class ProtocolError(Exception):
    """A client broke the protocol: `code` (a WebSocket close code) and why."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class StreamLimits:
    max_streams: int  # streams at once over both protocols; more are refused
    idle_timeout: float  # seconds a client may send nothing
    max_seconds: float  # seconds of audio one stream may send
    max_hotwords: int  # entries of a stream's hotwords (serve.max_hotwords)


class StreamSlots:
    """At most `limit` streams at once (thread-safe: both protocols take from it)."""

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


class _Session:
    """One client's stream: audio at the client's rate in, events out, limits checked."""

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


# --- Vosk over a WebSocket -------------------------------------------------------------


def vosk_message(event: StreamEvent, words: bool) -> dict:
    """An event as the Vosk server words it."""
    if event.kind == "partial":
        return {"partial": event.text}
    message: dict = {"text": event.text}
    if words:
        message["result"] = [
            {
                "word": w.word,
                "start": round(w.start, 3),
                "end": round(w.end, 3),
                "conf": round(w.confidence, 4),
            }
            for w in event.words
        ]
    return message


def vosk_replies(events: list[StreamEvent], partial: str, words: bool) -> list[dict]:
    """What the Vosk server answers an audio message with: each utterance it ended, else
    the partial text (unchanged or not): every message gets an answer, as Vosk's clients
    (send, then wait for the reply) expect."""
    finals = [vosk_message(e, words) for e in events if e.kind == "final"]
    return finals or [{"partial": partial}]


async def vosk_stream(websocket: WebSocket) -> None:
    """/v1/stream: one client's stream in the Vosk protocol."""
    server = websocket.app.state.server
    slots, limits = server.stream_slots, server.stream_limits
    if not slots.take():  # accepted first, so that the client reads why it is closed
        await websocket.accept()
        await websocket.close(CLOSE_FULL, f"{slots.limit} streams at once: try again later")
        return
    try:
        await websocket.accept()
        await _vosk_session(websocket, server.recognizer, limits)
    except WebSocketDisconnect:
        log.info("stream: the client went away")
    except ProtocolError as err:
        log.info("stream closed: %s", err.reason)
        with contextlib.suppress(Exception):
            await websocket.close(err.code, close_reason(err.reason))
    except Exception:  # a bug: logged, and the client told so, not left hanging
        log.exception("stream failed")
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_ERROR, "internal error")
    finally:
        slots.give()


async def _vosk_session(websocket: WebSocket, recognizer, limits: StreamLimits) -> None:
    words, session = False, None
    while True:
        message = await _receive(websocket, limits.idle_timeout)
        if message.get("text") is not None:
            request = _json_message(message["text"])
            if "config" in request:
                if session is not None:
                    raise ProtocolError(CLOSE_POLICY, "config comes before the audio")
                config = request["config"]
                if not isinstance(config, dict):
                    raise ProtocolError(CLOSE_BAD_DATA, "config must be an object")
                words = bool(config.get("words", False))
                options = config_options(recognizer, config.get("hotwords"), limits)
                rate = config.get("sample_rate", 16000)
                session = await asyncio.to_thread(_open, recognizer, rate, limits, options)
                continue
            if "eof" in request:
                session = session or await asyncio.to_thread(_open, recognizer, 16000, limits)
                for event in await asyncio.to_thread(session.finish):
                    if event.kind == "final":
                        await websocket.send_json(vosk_message(event, words))
                await websocket.close(CLOSE_NORMAL)
                return
            raise ProtocolError(
                CLOSE_BAD_DATA, f"unknown message {sorted(request)}: expected config or eof"
            )
        session = session or await asyncio.to_thread(_open, recognizer, 16000, limits)
        events = await asyncio.to_thread(session.accept, message.get("bytes") or b"")
        for reply in vosk_replies(events, session.stream.partial, words):
            await websocket.send_json(reply)


def config_options(recognizer, value, limits: StreamLimits) -> DecodingOptions:
    """A config's options: its "hotwords" (a list of entries or one string of them) through
    the one door (`Recognizer.options`). A hotword over a limit, or for a search that
    cannot use it, closes the stream for its policy (1008); a wrong entry for its data."""
    try:
        return recognizer.options(value, limits.max_hotwords, where="config hotwords")
    except HotwordLimitError as err:
        raise ProtocolError(CLOSE_POLICY, str(err)) from None
    except HotwordError as err:
        raise ProtocolError(CLOSE_BAD_DATA, str(err)) from None


def close_reason(text: str) -> str:
    """A WebSocket close reason: at most 123 bytes of UTF-8 (RFC 6455), cut at a character."""
    return text.encode()[:123].decode("utf-8", "ignore")


def _open(recognizer, rate, limits: StreamLimits, options=None) -> _Session:
    """A session at the client's rate, decoding with `options` (None: the server's own; run
    in a thread: a new hotword list builds its search, the first stream loads the LM)."""
    rate = check_rate(rate)
    try:
        return _Session(recognizer.stream(options), rate, limits)
    except UserError as err:  # a model that cannot stream
        raise ProtocolError(CLOSE_POLICY, str(err)) from err


async def _receive(websocket: WebSocket, timeout: float) -> dict:
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        raise ProtocolError(CLOSE_POLICY, f"nothing received for {timeout:g} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


def _json_message(text: str) -> dict:
    try:
        request = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProtocolError(CLOSE_BAD_DATA, f"a text message must be JSON ({err.msg})") from None
    if not isinstance(request, dict):
        raise ProtocolError(CLOSE_BAD_DATA, "a text message must be a JSON object")
    return request


# --- Wyoming over TCP ------------------------------------------------------------------

_MAX_HEADER_BYTES = 64 * 1024  # one event's JSON header line


async def read_event(
    reader: asyncio.StreamReader, timeout: float
) -> tuple[str, dict, bytes] | None:
    """The next Wyoming event (type, data, payload); None at the end of the connection."""
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError(
            CLOSE_TOO_BIG, f"an event header over {_MAX_HEADER_BYTES} bytes"
        ) from None
    except TimeoutError:
        raise ProtocolError(CLOSE_POLICY, f"nothing received for {timeout:g} s") from None
    header = _json_message(line.decode("utf-8", errors="replace"))
    kind = header.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(CLOSE_BAD_DATA, "an event needs a string 'type'")
    data = header.get("data") or {}
    lengths = [header.get("data_length") or 0, header.get("payload_length") or 0]
    if not all(isinstance(n, int) and 0 <= n <= MAX_MESSAGE_BYTES for n in lengths):
        raise ProtocolError(
            CLOSE_TOO_BIG, f"data/payload lengths {lengths}: at most {MAX_MESSAGE_BYTES}"
        )
    try:
        extra = (
            await asyncio.wait_for(reader.readexactly(lengths[0]), timeout) if lengths[0] else b""
        )
        payload = (
            await asyncio.wait_for(reader.readexactly(lengths[1]), timeout) if lengths[1] else b""
        )
    except asyncio.IncompleteReadError:
        return None
    except TimeoutError:
        raise ProtocolError(CLOSE_POLICY, f"nothing received for {timeout:g} s") from None
    if not isinstance(data, dict):
        raise ProtocolError(CLOSE_BAD_DATA, "an event's data must be an object")
    if extra:
        data = {**data, **_json_message(extra.decode("utf-8", errors="replace"))}
    return kind, data, payload


async def write_event(writer: asyncio.StreamWriter, kind: str, data: dict) -> None:
    """One Wyoming event with its data inline in the header line (no payload)."""
    writer.write((json.dumps({"type": kind, "data": data}) + "\n").encode())
    await writer.drain()


def wyoming_info(language: str = "en") -> dict:
    """What `describe` is answered with: one ASR program and its model."""
    attribution = {"name": "asr", "url": "https://github.com/"}
    model = {
        "name": "en-stream",
        "description": "asr streaming BiLSTM CTC model",
        "attribution": attribution,
        "installed": True,
        "languages": [language],
        "version": "1",
    }
    program = {
        "name": "asr",
        "description": "asr speech-to-text",
        "attribution": attribution,
        "installed": True,
        "version": "1",
        "models": [model],
        "supports_transcript_streaming": True,
    }
    return {"asr": [program], "tts": [], "handle": [], "intent": [], "wake": [], "satellite": None}


async def wyoming_client(
    recognizer, limits: StreamLimits, slots: StreamSlots, reader, writer
) -> None:
    """One Wyoming connection: any number of describe and transcribe exchanges."""
    if not slots.take():
        await write_event(
            writer,
            "error",
            {"text": f"{slots.limit} streams at once: try again later", "code": "busy"},
        )
        writer.close()
        return
    try:
        await _wyoming_events(recognizer, limits, reader, writer)
    except ProtocolError as err:
        log.info("wyoming client closed: %s", err.reason)
        with contextlib.suppress(Exception):
            await write_event(writer, "error", {"text": err.reason, "code": str(err.code)})
    except (ConnectionError, asyncio.IncompleteReadError):
        log.info("wyoming: the client went away")
    finally:
        slots.give()
        with contextlib.suppress(Exception):
            writer.close()


async def _wyoming_events(recognizer, limits: StreamLimits, reader, writer) -> None:
    session = None
    while (event := await read_event(reader, limits.idle_timeout)) is not None:
        kind, data, payload = event
        if kind == "describe":
            await write_event(writer, "info", wyoming_info())
        elif kind == "transcribe":
            continue  # its model and language: there is one of each
        elif kind == "audio-start":
            session = await asyncio.to_thread(_wyoming_session, recognizer, data, limits)
        elif kind == "audio-chunk":
            if session is None:  # a chunk without audio-start: its own format tells
                session = await asyncio.to_thread(_wyoming_session, recognizer, data, limits)
            _check_format(data, session.rate)
            events = await asyncio.to_thread(session.accept, payload)
            session.said += [e.text for e in events if e.kind == "final" and e.text]
        elif kind == "audio-stop":
            if session is None:
                raise ProtocolError(CLOSE_POLICY, "audio-stop without audio")
            events = await asyncio.to_thread(session.finish)
            session.said += [e.text for e in events if e.kind == "final" and e.text]
            await write_event(writer, "transcript", {"text": " ".join(session.said)})
            session = None
        else:
            log.info("wyoming: ignored a %r event", kind)


def _wyoming_session(recognizer, data: dict, limits: StreamLimits) -> _Session:
    if data.get("width", 2) != 2 or data.get("channels", 1) != 1:
        raise ProtocolError(
            CLOSE_BAD_DATA,
            f"audio must be 16-bit mono: width {data.get('width')}, "
            f"channels {data.get('channels')}",
        )
    return _open(recognizer, data.get("rate", 16000), limits)


def _check_format(data: dict, rate: int) -> None:
    if data.get("rate", rate) != rate or data.get("width", 2) != 2 or data.get("channels", 1) != 1:
        raise ProtocolError(
            CLOSE_BAD_DATA, "an audio-chunk's format differs from its audio-start's"
        )


async def wyoming_server(
    recognizer, host: str, port: int, limits: StreamLimits, slots: StreamSlots
):
    """The listening asyncio server (`async with server: await server.serve_forever()`)."""

    def handle(reader, writer):
        return wyoming_client(recognizer, limits, slots, reader, writer)

    return await asyncio.start_server(handle, host, port, limit=_MAX_HEADER_BYTES)
