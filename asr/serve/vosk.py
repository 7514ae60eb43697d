"""The Vosk protocol over a WebSocket at /v1/stream (alphacep/vosk-server's
websocket/asr_server.py, which Vosk's clients speak):

    -> {"config": {"sample_rate": 16000, "words": true,     text, optional, first
                   "hotwords": ["Nautilus", "Captain Nemo:8"],
                   "raw": false}}
    -> <16-bit little-endian mono PCM>                        binary, any length
    <- {"partial": "the old man"}                             the text so far changed
    <- {"text": "The old man...", "result": [{"word", "start", "end", "conf"}]}   at a pause
    -> {"eof": 1}                                             text: the end of the audio
    <- {"text": "..."}                                        the last result, then closed

A final's text is written (case, punctuation, numbers), its result the timed spoken words;
partials are spoken words. "raw": true in the config gives spoken words in the finals too.
A client that breaks a rule (asr/serve/streaming.py) is closed with a close code and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.inference.stream import StreamEvent
from asr.serve.server import Protocol, Server
from asr.serve.streaming import (
    CLOSE_BAD_DATA,
    CLOSE_ERROR,
    CLOSE_FULL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    AudioBudget,
    ProtocolError,
    StreamSession,
    close_reason,
    json_object,
    open_session,
    stream_options,
)

__all__ = ["PROTOCOL", "URL", "vosk_message", "vosk_replies"]

log = logging.getLogger("asr.serve.vosk")

URL = "/v1/stream"


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


async def vosk_stream(server: Server, websocket: WebSocket) -> None:
    """/v1/stream: one client's stream in the Vosk protocol."""
    slots = server.stream_slots
    if not slots.take():  # accepted first, so that the client reads why it is closed
        await websocket.accept()
        await websocket.close(CLOSE_FULL, f"{slots.limit} streams at once: try again later")
        return
    try:
        await websocket.accept()
        await _vosk_session(websocket, server)
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


async def _vosk_session(websocket: WebSocket, server: Server) -> None:
    recognizer, limits = server.recognizer, server.stream_limits
    words, session = False, None
    budget = AudioBudget(limits.idle_timeout)
    while True:
        message = await _receive(websocket, budget)
        if message.get("text") is not None:
            request = json_object(message["text"], "a text message")
            if "config" in request:
                if session is not None:
                    raise ProtocolError(CLOSE_POLICY, "config comes before the audio")
                config = request["config"]
                if not isinstance(config, dict):
                    raise ProtocolError(CLOSE_BAD_DATA, "config must be an object")
                words = bool(config.get("words", False))
                hotwords, raw = config.get("hotwords"), config.get("raw")
                options = stream_options(recognizer, hotwords, limits, "config hotwords", raw)
                rate = config.get("sample_rate", 16000)
                session = await asyncio.to_thread(open_session, recognizer, rate, limits, options)
                continue
            if "eof" in request:
                session = session or await _open_default(server)
                for event in await asyncio.to_thread(session.finish):
                    if event.kind == "final":
                        await websocket.send_json(vosk_message(event, words))
                await websocket.close(CLOSE_NORMAL)
                return
            raise ProtocolError(
                CLOSE_BAD_DATA, f"unknown message {sorted(request)}: expected config or eof"
            )
        session = session or await _open_default(server)
        audio = message.get("bytes") or b""
        events = await asyncio.to_thread(session.accept, audio)
        budget.heard(len(audio) / (2 * session.rate))
        for reply in vosk_replies(events, session.stream.partial, words):
            await websocket.send_json(reply)


async def _open_default(server: Server) -> StreamSession:
    """A session at 16 kHz with the server's options: audio came before any config."""
    limits = server.stream_limits
    return await asyncio.to_thread(open_session, server.recognizer, 16000, limits)


async def _receive(websocket: WebSocket, budget: AudioBudget) -> dict:
    message = await budget.wait(websocket.receive())
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


def routes(server: Server) -> list[BaseRoute]:
    return [WebSocketRoute(URL, functools.partial(vosk_stream, server))]


PROTOCOL = Protocol(routes)
