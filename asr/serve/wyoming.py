"""The Wyoming protocol (Home Assistant's) on its own TCP port (`asr serve --wyoming-port`).

An event is a JSON header line, then `data_length` bytes of JSON data and `payload_length`
bytes of payload (PyPI `wyoming`). `describe` -> `info`, naming the model that transcribes
(the server's file model: Wyoming sends a whole utterance, so it is buffered and decoded
once, by the more accurate offline model; no transcript streaming is claimed). `transcribe`,
`audio-start`, `audio-chunk`..., `audio-stop` -> `transcript`: the written text (case,
punctuation, numbers), or the spoken words when the `transcribe` event's data says "raw":
true. `transcript_names` and `transcript_terms` (wyoming 1.10's biasing) favour those
words as hotwords do (names at the default boost, terms at half); a language other than
English, or a model other than the one `describe` lists, is an `error`, not ignored.

An utterance holds a stream slot (`--max-streams`, shared with the WebSocket) from its
audio-start to its transcript; a connection holds none, and one that sends no audio for
`--stream-idle-timeout` is closed (pings earn nothing). A client that breaks a rule
(asr/serve/streaming.py) gets an `error` event with the reason, and is closed once what it
had already sent is read (a client still writing would otherwise get a reset in place of
the reason). docs/protocols.md lists every field.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from starlette.routing import BaseRoute

from asr import __version__
from asr.audio import StreamResampler
from asr.decode import DecodingOptions
from asr.hotwords import DEFAULT_BOOST, Hotword, HotwordError, parse_entry
from asr.inference.segment import SegmentConfig
from asr.serve.server import Protocol, QueueFull, Server, model_name
from asr.serve.streaming import (
    CLOSE_BAD_DATA,
    CLOSE_FULL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    MAX_MESSAGE_BYTES,
    AudioBudget,
    ProtocolError,
    StreamLimits,
    StreamSlots,
    check_rate,
    is_english,
    json_object,
    stream_options,
)

__all__ = ["PROTOCOL", "read_event", "wyoming_info", "wyoming_server", "write_event"]

log = logging.getLogger("asr.serve.wyoming")

_MAX_HEADER_BYTES = 64 * 1024  # one event's JSON header line
LANGUAGE = "en"  # the language `describe` lists
TERM_BOOST = DEFAULT_BOOST / 2  # transcript_terms rank below transcript_names (wyoming 1.10)
# After an error: what the client had sent is read and dropped for at most this long (and
# this much) before the close, so that it reads the reason rather than a reset.
_DRAIN_SECONDS, _DRAIN_BYTES = 2.0, 16 * MAX_MESSAGE_BYTES


async def read_event(
    reader: asyncio.StreamReader, budget: AudioBudget
) -> tuple[str, dict, bytes] | None:
    """The next Wyoming event (type, data, payload); None at the end of the connection.
    Waiting spends `budget`, which only audio refills."""
    try:
        line = await budget.wait(reader.readuntil(b"\n"))
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError(
            CLOSE_TOO_BIG, f"an event header over {_MAX_HEADER_BYTES} bytes"
        ) from None
    header = json_object(line, "an event header")
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
        extra = await budget.wait(reader.readexactly(lengths[0])) if lengths[0] else b""
        payload = await budget.wait(reader.readexactly(lengths[1])) if lengths[1] else b""
    except asyncio.IncompleteReadError:
        return None
    if not isinstance(data, dict):
        raise ProtocolError(CLOSE_BAD_DATA, "an event's data must be an object")
    if extra:
        data = {**data, **json_object(extra, f"the data of a {kind!r} event")}
    return kind, data, payload


async def write_event(writer: asyncio.StreamWriter, kind: str, data: dict) -> None:
    """One Wyoming event with its data inline in the header line (no payload)."""
    writer.write((json.dumps({"type": kind, "data": data}) + "\n").encode())
    await writer.drain()


def wyoming_info(server: Server) -> dict:
    """What `describe` is answered with: one ASR program and the model that will run."""
    source = Path(server.recognizer.source)
    version = __version__
    with contextlib.suppress(OSError):  # a model folder's date says which training it is
        version = time.strftime("%Y-%m-%d", time.gmtime(source.stat().st_mtime))
    config = server.config
    attribution = {"name": "asr", "url": f"http://{config.host}:{config.port}/"}
    model = {
        "name": model_name(server.recognizer),
        "description": "asr CTC recognizer (whole utterances, written text)",
        "attribution": attribution,
        "installed": True,
        "languages": [LANGUAGE],
        "version": version,
    }
    program = {
        "name": "asr",
        "description": "asr speech-to-text",
        "attribution": attribution,
        "installed": True,
        "version": __version__,
        "models": [model],
        "supports_transcript_streaming": False,
    }
    return {"asr": [program], "tts": [], "handle": [], "intent": [], "wake": [], "satellite": None}


class _Connections:
    """Wyoming connections at once (at most `limit`; the HTTP server's --max-connections)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0


async def wyoming_client(server: Server, connections: _Connections, reader, writer) -> None:
    """One Wyoming connection: any number of describe and transcribe exchanges."""
    if connections.open >= connections.limit:
        await _refuse(reader, writer, f"{connections.limit} connections at once: try again later")
        return
    connections.open += 1
    failed = False
    try:
        await _wyoming_events(server, reader, writer)
    except ProtocolError as err:
        log.info("wyoming client closed: %s", err.reason)
        with contextlib.suppress(Exception):
            await write_event(writer, "error", {"text": err.reason, "code": str(err.code)})
            failed = True
    except (ConnectionError, asyncio.IncompleteReadError):
        log.info("wyoming: the client went away")
    except Exception:  # a bug: logged, and the client told so, not left guessing
        log.exception("wyoming client failed")
        with contextlib.suppress(Exception):
            await write_event(writer, "error", {"text": "internal error", "code": "1011"})
    finally:
        connections.open -= 1
    try:
        if failed:
            await _drain(reader, writer)
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _refuse(reader, writer, text: str) -> None:
    with contextlib.suppress(Exception):
        await write_event(writer, "error", {"text": text, "code": str(CLOSE_FULL)})
        await _drain(reader, writer)
    writer.close()


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Say that nothing more comes (half-close), then read and drop what the client sends
    until it closes, for at most _DRAIN_SECONDS and _DRAIN_BYTES: closing a socket with
    unread data resets the connection, and a client still writing audio would lose the
    `error` event before it read it."""
    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
    loop = asyncio.get_running_loop()
    deadline, read = loop.time() + _DRAIN_SECONDS, 0
    with contextlib.suppress(Exception):  # a timeout or a reset: the drain ends either way
        while read < _DRAIN_BYTES and (left := deadline - loop.time()) > 0:
            data = await asyncio.wait_for(reader.read(65536), left)
            if not data:
                return
            read += len(data)


class Utterance:
    """One utterance's audio from audio-start to audio-stop, within the stream limits,
    resampled to the model's rate as it arrives and kept as 16-bit samples (at most
    `--max-stream-seconds` x 32 KB/s, whatever the client's rate); it holds a stream slot
    until `close`."""

    def __init__(self, data: dict, limits: StreamLimits, slots: StreamSlots, rate: int) -> None:
        if data.get("width", 2) != 2 or data.get("channels", 1) != 1:
            raise ProtocolError(
                CLOSE_BAD_DATA,
                f"audio must be 16-bit mono: width {data.get('width')}, "
                f"channels {data.get('channels')}",
            )
        self.rate, self.limits = check_rate(data.get("rate", 16000)), limits
        if not slots.take():
            raise ProtocolError(CLOSE_FULL, f"{slots.limit} streams at once: try again later")
        self.slots, self.chunks, self.bytes = slots, [], 0
        self.resampler = StreamResampler(self.rate, rate)

    def add(self, data: dict, payload: bytes) -> None:
        announced = (data.get("rate", self.rate), data.get("width", 2), data.get("channels", 1))
        if announced != (self.rate, 2, 1):
            raise ProtocolError(
                CLOSE_BAD_DATA, "an audio-chunk's format differs from its audio-start's"
            )
        if len(payload) % 2:
            raise ProtocolError(
                CLOSE_BAD_DATA, f"16-bit PCM comes in whole samples: {len(payload)} bytes"
            )
        self.bytes += len(payload)
        if self.bytes / (2 * self.rate) > self.limits.max_seconds:
            raise ProtocolError(
                CLOSE_POLICY, f"a stream may hold {self.limits.max_seconds:g} s of audio"
            )
        self.chunks.append(_pcm16(self.resampler.push(_samples(payload))))

    def waveform(self) -> np.ndarray:
        """(S,) float32 at the model's rate: the whole utterance."""
        self.chunks.append(_pcm16(self.resampler.flush()))
        return _samples(b"".join(self.chunks))

    def close(self) -> None:
        if self.slots is not None:
            self.slots.give()
            self.slots = None


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def _pcm16(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _transcribe(server: Server, wave: np.ndarray, options: DecodingOptions | None) -> str:
    """One utterance by the server's file model (a worker thread), as an upload would be."""
    if len(wave) == 0:
        return ""
    segment = SegmentConfig(max_seconds=server.config.max_seconds)
    batch = server.config.batch_size
    (transcript,) = server.recognizer.transcribe([wave], options, batch, segment=segment)
    return transcript.text


async def _wyoming_events(server: Server, reader, writer) -> None:
    limits, utterance = server.stream_limits, None
    options = None  # the last transcribe event's (None: the server's own)
    budget = AudioBudget(limits.idle_timeout)
    try:
        while (event := await read_event(reader, budget)) is not None:
            kind, data, payload = event
            if kind == "describe":
                await write_event(writer, "info", wyoming_info(server))
            elif kind == "transcribe":
                options = _transcribe_options(server, data)
            elif kind == "ping":  # answered, but it earns no time: only audio does
                await write_event(writer, "pong", {"text": data.get("text")})
            elif kind == "audio-start" and utterance is not None:
                raise ProtocolError(CLOSE_POLICY, "audio-start inside an utterance")
            elif kind in ("audio-start", "audio-chunk"):
                if utterance is None:  # a chunk without audio-start: its own format tells
                    rate = server.recognizer.sample_rate
                    utterance = Utterance(data, limits, server.stream_slots, rate)
                if kind == "audio-chunk":
                    utterance.add(data, payload)
                    budget.heard(len(payload) / (2 * utterance.rate))
            elif kind == "audio-stop":
                if utterance is None:
                    raise ProtocolError(CLOSE_POLICY, "audio-stop without audio")
                text = await _recognize(server, utterance.waveform(), options)
                await write_event(writer, "transcript", {"text": text, "language": LANGUAGE})
                utterance.close()
                utterance, options = None, None
            else:
                log.info("wyoming: ignored a %r event", kind)
    finally:
        if utterance is not None:
            utterance.close()


async def _recognize(server: Server, wave: np.ndarray, options) -> str:
    """The utterance through the server's recognition queue (`--workers`, `--max-queue`,
    `--timeout`, as an upload's)."""
    try:
        future = server.queue.submit(_transcribe, server, wave, options)
    except QueueFull as err:
        raise ProtocolError(CLOSE_FULL, f"server busy ({err}); try again later") from None
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), server.config.timeout)
    except TimeoutError:
        limit = server.config.timeout
        raise ProtocolError(CLOSE_POLICY, f"not transcribed within {limit:g} s") from None


def _transcribe_options(server: Server, data: dict) -> DecodingOptions:
    """A `transcribe` event's options: its model name and language checked, its
    transcript_names and transcript_terms as hints (used where the search can), its raw."""
    _check_model(server, data)
    hints = [*_bias(data, "transcript_names", DEFAULT_BOOST)]
    hints += _bias(data, "transcript_terms", TERM_BOOST)
    return stream_options(
        server.recognizer, None, server.stream_limits, "transcribe", data.get("raw"), hints
    )


def _bias(data: dict, key: str, boost: float) -> list[Hotword]:
    """The words of a transcribe event's biasing list, each a hotword at `boost`."""
    entries = data.get(key)
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ProtocolError(CLOSE_BAD_DATA, f"{key} must be a list of strings")
    try:
        parsed = [parse_entry(e, f"{key} entry {i}", "") for i, e in enumerate(entries, 1)]
    except HotwordError as err:
        raise ProtocolError(CLOSE_BAD_DATA, str(err)) from None
    return [replace(h, boost=boost) for h in parsed]


def _check_model(server: Server, data: dict) -> None:
    """A `transcribe` event's model name and language: absent, or the ones `describe`
    lists (a language's region is allowed: en-US); else bad data, never ignored."""
    name, language = data.get("name"), data.get("language")
    served = model_name(server.recognizer)
    if name is not None and name not in (served, "asr"):
        raise ProtocolError(
            CLOSE_BAD_DATA, f"model {name!r} is not served: the one model is {served!r}"
        )
    if language is not None and not is_english(language):
        raise ProtocolError(
            CLOSE_BAD_DATA,
            f"language {language!r} is not supported: this model transcribes English (en)",
        )


async def wyoming_server(server: Server, host: str, port: int) -> asyncio.Server:
    """The listening asyncio server (`async with listening: await listening.serve_forever()`)."""
    connections = _Connections(server.config.max_connections)
    handle = functools.partial(wyoming_client, server, connections)
    return await asyncio.start_server(handle, host, port, limit=_MAX_HEADER_BYTES)


async def listen(server: Server) -> asyncio.AbstractServer | None:
    """The Wyoming port, when `--wyoming-port` asks for one."""
    if not server.config.wyoming_port:
        return None
    host, port = server.config.host, server.config.wyoming_port
    listening = await wyoming_server(server, host, port)
    log.info("Wyoming protocol on tcp://%s:%d", host, port)
    return listening


def routes(_server: Server) -> list[BaseRoute]:
    return []  # its own port, not the HTTP server's


PROTOCOL = Protocol(routes, listen)
