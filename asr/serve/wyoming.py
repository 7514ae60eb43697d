"""The Wyoming protocol (Home Assistant's) on its own TCP port (`asr serve --wyoming-port`).

An event is a JSON header line, then `data_length` bytes of JSON data and `payload_length`
bytes of payload (PyPI `wyoming`). `describe` -> `info`; `transcribe`, `audio-start`,
`audio-chunk`..., `audio-stop` -> `transcript`: the written text of the utterances (case,
punctuation, numbers), or their spoken words when the `transcribe` event's data says
"raw": true (beside its name and language; a language other than English, or a model
other than the one `describe` lists, is an `error`, not ignored). A client that breaks a
rule (asr/serve/streaming.py) gets an `error` event with the reason, and is closed once
what it had already sent is read (a client still writing would otherwise get a reset in
place of the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging

from starlette.routing import BaseRoute

from asr.serve.server import Protocol, Server
from asr.serve.streaming import (
    CLOSE_BAD_DATA,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    MAX_MESSAGE_BYTES,
    AudioBudget,
    ProtocolError,
    StreamLimits,
    StreamSession,
    json_object,
    open_session,
    stream_options,
)

__all__ = ["PROTOCOL", "read_event", "wyoming_info", "wyoming_server", "write_event"]

log = logging.getLogger("asr.serve.wyoming")

_MAX_HEADER_BYTES = 64 * 1024  # one event's JSON header line
MODEL_NAME, LANGUAGE = "en-stream", "en"  # the one model `describe` lists, and its language
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


def wyoming_info(language: str = LANGUAGE) -> dict:
    """What `describe` is answered with: one ASR program and its model."""
    attribution = {"name": "asr", "url": "https://github.com/"}
    model = {
        "name": MODEL_NAME,
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


async def wyoming_client(server: Server, reader, writer) -> None:
    """One Wyoming connection: any number of describe and transcribe exchanges."""
    slots = server.stream_slots
    if not slots.take():
        with contextlib.suppress(Exception):
            busy = {"text": f"{slots.limit} streams at once: try again later", "code": "busy"}
            await write_event(writer, "error", busy)
            await _drain(reader, writer)
        writer.close()
        return
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
    finally:
        slots.give()
    try:
        if failed:  # the slot is free already: draining holds only the connection
            await _drain(reader, writer)
    finally:
        with contextlib.suppress(Exception):
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


async def _wyoming_events(server: Server, reader, writer) -> None:
    recognizer, limits = server.recognizer, server.stream_limits
    session, options = None, None  # options: the last transcribe event's (None: the server's)
    budget = AudioBudget(limits.idle_timeout)
    while (event := await read_event(reader, budget)) is not None:
        kind, data, payload = event
        if kind == "describe":
            await write_event(writer, "info", wyoming_info())
        elif kind == "transcribe":
            _check_model(data)
            options = stream_options(recognizer, None, limits, "transcribe", data.get("raw"))
        elif kind == "audio-start":
            args = (recognizer, data, limits, options)
            session = await asyncio.to_thread(_wyoming_session, *args)
        elif kind == "audio-chunk":
            if session is None:  # a chunk without audio-start: its own format tells
                args = (recognizer, data, limits, options)
                session = await asyncio.to_thread(_wyoming_session, *args)
            _check_format(data, session.rate)
            events = await asyncio.to_thread(session.accept, payload)
            budget.heard(len(payload) / (2 * session.rate))
            session.said += [e.text for e in events if e.kind == "final" and e.text]
        elif kind == "audio-stop":
            if session is None:
                raise ProtocolError(CLOSE_POLICY, "audio-stop without audio")
            events = await asyncio.to_thread(session.finish)
            session.said += [e.text for e in events if e.kind == "final" and e.text]
            await write_event(writer, "transcript", {"text": " ".join(session.said)})
            session, options = None, None
        else:
            log.info("wyoming: ignored a %r event", kind)


def _check_model(data: dict) -> None:
    """A `transcribe` event's model name and language: absent, or the ones `describe`
    lists (a language's region is allowed: en-US); else bad data, never ignored."""
    name, language = data.get("name"), data.get("language")
    if name is not None and name not in (MODEL_NAME, "asr"):
        raise ProtocolError(
            CLOSE_BAD_DATA, f"model {name!r} is not served: the one model is {MODEL_NAME!r}"
        )
    primary = language.replace("_", "-").split("-")[0] if isinstance(language, str) else None
    if language is not None and (primary or "").lower() != LANGUAGE:
        raise ProtocolError(
            CLOSE_BAD_DATA,
            f"language {language!r} is not supported: this model transcribes English (en)",
        )


def _wyoming_session(recognizer, data: dict, limits: StreamLimits, options) -> StreamSession:
    if data.get("width", 2) != 2 or data.get("channels", 1) != 1:
        raise ProtocolError(
            CLOSE_BAD_DATA,
            f"audio must be 16-bit mono: width {data.get('width')}, "
            f"channels {data.get('channels')}",
        )
    return open_session(recognizer, data.get("rate", 16000), limits, options)


def _check_format(data: dict, rate: int) -> None:
    if data.get("rate", rate) != rate or data.get("width", 2) != 2 or data.get("channels", 1) != 1:
        raise ProtocolError(
            CLOSE_BAD_DATA, "an audio-chunk's format differs from its audio-start's"
        )


async def wyoming_server(server: Server, host: str, port: int) -> asyncio.Server:
    """The listening asyncio server (`async with listening: await listening.serve_forever()`)."""
    handle = functools.partial(wyoming_client, server)
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
