"""The Vosk protocol over a WebSocket at /v1/stream (alphacep/vosk-server's
websocket/asr_server.py, which Vosk's clients speak):

    -> {"config": {"sample_rate": 16000, "words": true,     text, optional, first
                   "hotwords": ["Nautilus", "Captain Nemo:8"],
                   "phrase_list": ["captain nemo"], "max_alternatives": 3,
                   "raw": false}}
    -> <16-bit little-endian mono PCM>                        binary, any length
    <- {"partial": "the old man"}                             the text so far
    <- {"text": "The old man...", "result": [{"word", "start", "end", "conf"}]}   at a pause
    -> {"eof": 1}                                             text: the end of the audio
    <- {"text": "..."}                                        the last result, then closed

One answer per message, as the Vosk server gives: an audio message gets a final when an
utterance ended in it (two that ended in one message are one final), else the partial;
`eof` gets one final. A final's text is written (case, punctuation, numbers), its result
the timed spoken words (on unless "words": false, as VOSK_SHOW_WORDS; absent when none);
partials are spoken words. "raw": true gives spoken words in the finals too.
"phrase_list" (Vosk's grammar) joins "hotwords": its phrases are boosted, not the only
ones allowed ("[unk]" is dropped).
"max_alternatives": N > 0 answers finals as Vosk does, {"alternatives": [{"text",
"confidence"}, ...]} (the beam's n-best, spoken words, confidence its search score; the
first carries the result). docs/protocols.md lists every field. A client that breaks a
rule (asr/serve/streaming.py) is closed with a close code and reason.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, replace

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.decode import DecodingOptions
from asr.hotwords import split_list
from asr.inference.stream import StreamEvent
from asr.serve.server import Protocol, Server, live_connection
from asr.serve.streaming import (
    CLOSE_BAD_DATA,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    AudioBudget,
    ProtocolError,
    StreamSession,
    json_object,
    open_session,
    stream_options,
)

__all__ = ["PROTOCOL", "URL", "VoskReply", "vosk_message", "vosk_reply"]

log = logging.getLogger("asr.serve.vosk")

URL = "/v1/stream"


MAX_ALTERNATIVES = 20  # a client's max_alternatives; more is refused (1007)


@dataclass(frozen=True)
class VoskReply:
    """How a client asked its finals to be worded (its config)."""

    words: bool = True  # timed words in "result" (Vosk's VOSK_SHOW_WORDS, on by default)
    alternatives: int = 0  # > 0: finals as an n-best of at most this many


def vosk_message(event: StreamEvent, reply: VoskReply = VoskReply()) -> dict:
    """An event as the Vosk server words it."""
    if event.kind == "partial":
        return {"partial": event.text}
    result = [
        {
            "word": w.word,
            "start": round(w.start, 3),
            "end": round(w.end, 3),
            "conf": round(w.confidence, 4),
        }
        for w in event.words
    ]
    if reply.alternatives:
        best = event.alternatives or [(event.raw_text, 0.0)]
        return {
            "alternatives": [
                {"text": text, "confidence": round(score, 3)}
                | ({"result": result} if i == 0 and reply.words and result else {})
                for i, (text, score) in enumerate(best[: reply.alternatives])
            ]
        }
    return {"text": event.text} | ({"result": result} if reply.words and result else {})


def vosk_reply(events: list[StreamEvent], partial: str, reply: VoskReply = VoskReply()) -> dict:
    """The one answer to an audio message (or to `eof`): the utterances it ended, as one
    final, else the partial text (unchanged or not). Vosk's clients send a message, then
    read one answer: a second would be read as the next message's."""
    finals = [e for e in events if e.kind == "final"]
    if not finals:
        return {"partial": partial}
    said = [e for e in finals if e.raw_text or e.text]
    if len(said) <= 1:  # one utterance (its n-best kept), or only silence
        return vosk_message(said[0] if said else finals[-1], reply)
    merged = StreamEvent(
        "final",
        " ".join(e.text for e in said),
        said[0].start,
        said[-1].end,
        [w for e in said for w in e.words],
        " ".join(e.raw_text for e in said),
    )
    return vosk_message(merged, reply)


async def vosk_stream(server: Server, websocket: WebSocket) -> None:
    """/v1/stream: one client's stream in the Vosk protocol."""
    run = functools.partial(_vosk_session, websocket, server)
    await live_connection(server, websocket, run, "stream")


async def _vosk_session(websocket: WebSocket, server: Server) -> None:
    recognizer, limits = server.live, server.stream_limits
    reply, session = VoskReply(), None
    budget = AudioBudget(limits.idle_timeout)
    while True:
        message = await _receive(websocket, budget)
        if message.get("text") is not None:
            request = json_object(message["text"], "a text message")
            if "config" in request:
                if session is not None:
                    raise ProtocolError(CLOSE_POLICY, "one config, before the audio")
                reply, options, rate = _read_config(request["config"], server)
                session = await asyncio.to_thread(open_session, recognizer, rate, limits, options)
                continue
            if "eof" in request:
                session = session or await _open_default(server)
                events = await asyncio.to_thread(session.finish)
                await websocket.send_json(vosk_reply(events, "", reply))
                await websocket.close(CLOSE_NORMAL)
                return
            raise ProtocolError(
                CLOSE_BAD_DATA, f"unknown message {sorted(request)}: expected config or eof"
            )
        session = session or await _open_default(server)
        audio = message.get("bytes") or b""
        events = await asyncio.to_thread(session.accept, audio)
        budget.heard(len(audio) / (2 * session.rate))
        await websocket.send_json(vosk_reply(events, session.stream.partial, reply))


def _read_config(config, server: Server) -> tuple[VoskReply, DecodingOptions, object]:
    """A client's config: how to word the finals, the options to decode with, its rate."""
    if not isinstance(config, dict):
        raise ProtocolError(CLOSE_BAD_DATA, "config must be an object")
    words = config.get("words", True)
    alternatives = config.get("max_alternatives", 0)
    if type(words) not in (bool, int) or words not in (0, 1):  # clients send 1 or true
        raise ProtocolError(CLOSE_BAD_DATA, f"words must be true or false, got {words!r}")
    if type(alternatives) is not int or not 0 <= alternatives <= MAX_ALTERNATIVES:
        raise ProtocolError(
            CLOSE_BAD_DATA,
            f"max_alternatives must be an integer 0-{MAX_ALTERNATIVES}, got {alternatives!r}",
        )
    hotwords = _with_phrases(config.get("hotwords"), config.get("phrase_list"))
    limits = server.stream_limits
    options = stream_options(server.live, hotwords, limits, "config hotwords", config.get("raw"))
    if alternatives > 1:
        options = replace(options, nbest=min(alternatives, options.beam_size))
    return VoskReply(bool(words), alternatives), options, config.get("sample_rate", 16000)


def _with_phrases(hotwords, phrases):
    """The config's hotwords with its phrase_list (Vosk's grammar) joined to them."""
    if phrases is None:
        return hotwords
    if hotwords is not None and not isinstance(hotwords, str | list):
        raise ProtocolError(CLOSE_BAD_DATA, "config hotwords must be a list of strings or a string")
    if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
        raise ProtocolError(CLOSE_BAD_DATA, "phrase_list must be a list of strings")
    phrases = [p for p in phrases if p.strip() and p.strip() != "[unk]"]
    if isinstance(hotwords, str):
        hotwords = split_list(hotwords)
    return [*(hotwords or []), *phrases] or None


async def _open_default(server: Server) -> StreamSession:
    """A session at 16 kHz with the server's options: audio came before any config."""
    limits = server.stream_limits
    return await asyncio.to_thread(open_session, server.live, 16000, limits)


async def _receive(websocket: WebSocket, budget: AudioBudget) -> dict:
    message = await budget.wait(websocket.receive())
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


def routes(server: Server) -> list[BaseRoute]:
    return [WebSocketRoute(URL, functools.partial(vosk_stream, server))]


PROTOCOL = Protocol(routes)
