"""OpenAI's Realtime transcription over a WebSocket at /v1/realtime?intent=transcription
(the documented client and server events, as the `openai` SDK's `client.realtime.connect`
speaks them), run on the server's live model.

    <- session.created                                      on connect
    -> session.update {"session": {"type": "transcription", "audio": {"input": {
           "format": {"type": "audio/pcm", "rate": 24000},
           "transcription": {"model", "language": "en", "prompt"},
           "turn_detection": {"type": "server_vad", ...} | null}}}}
    <- session.updated                                      the session as it now is
    -> input_audio_buffer.append {"audio": <base64 16-bit mono PCM>}
    <- input_audio_buffer.speech_started {audio_start_ms, item_id}
    <- input_audio_buffer.speech_stopped {audio_end_ms, item_id}    at a pause (server VAD)
    <- input_audio_buffer.committed {item_id, previous_item_id}
    <- conversation.item.input_audio_transcription.delta {item_id, content_index, delta}
    <- conversation.item.input_audio_transcription.completed {item_id, content_index,
           transcript, usage}
    -> input_audio_buffer.commit                            ends the turn now
    -> input_audio_buffer.clear                             drops the turn's audio
    <- error {"error": {"type", "code", "message", "param", "event_id"}}

Server VAD is the stream's own endpointing (a pause ends a turn; its numbers are checked,
not used); with turn_detection null a turn ends only at `commit`. A turn's transcript is
written (case, punctuation, numbers) and comes whole when the turn ends: one delta, then
completed. A client event the server cannot use gets an `error` event and the session goes
on, as OpenAI's does; the stream limits (asr/serve/streaming.py) close it.
docs/protocols.md lists every field.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import itertools
import logging
import math

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.decode import DecodingOptions
from asr.hotwords import prompt_hints
from asr.inference.stream import StreamEvent
from asr.serve.server import Protocol, Server, live_connection
from asr.serve.streaming import (
    CLOSE_POLICY,
    AudioBudget,
    ProtocolError,
    StreamSession,
    is_english,
    json_object,
    open_session,
    stream_options,
)

__all__ = ["PROTOCOL", "URL"]

log = logging.getLogger("asr.serve.realtime")

URL = "/v1/realtime"
RATE = 24_000  # OpenAI's audio/pcm rate, the default of a session
_FORMATS = ("audio/pcm", "pcm16")  # what `format.type` (or the older string) may say
_VAD_RANGES = {
    "threshold": (0.0, 1.0),
    "prefix_padding_ms": (0, 10_000),
    "silence_duration_ms": (0, 10_000),
}


class RealtimeError(Exception):
    """A client event the server cannot use: answered with an `error` event, session open."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


class Turns:
    """One connection's session: its settings, its stream, its turns (items) so far."""

    def __init__(self, server: Server) -> None:
        self.server, self.rate, self.vad = server, RATE, True
        self.session_record = _session_record(RATE, {"type": "server_vad"}, None, None)
        self.options: DecodingOptions | None = None
        self.stream: StreamSession | None = None
        self.ids = itertools.count(1)
        self.item, self.previous = None, None  # the turn under way; the last one
        self.said: list[str] = []  # its finals so far (turn_detection null: to the commit)
        self.started = 0.0  # when the turn under way began (its stream's seconds)
        self.base = 0.0  # seconds of audio in the streams before this one

    def drop_stream(self) -> None:
        """The next audio starts a new stream (after a commit, a clear, an update)."""
        if self.stream is not None:
            self.base += self.stream.stream.seconds
        self.stream = None

    def ms(self, seconds: float) -> int:
        """A time in the current stream as OpenAI counts it: ms of the session's audio."""
        return round((self.base + seconds) * 1000)

    def new_id(self, kind: str) -> str:
        return f"{kind}_{next(self.ids):06d}"

    def event(self, kind: str, **data) -> dict:
        return {"type": kind, "event_id": self.new_id("event"), **data}


async def realtime(server: Server, websocket: WebSocket) -> None:
    """/v1/realtime: one client's transcription session."""
    if websocket.query_params.get("intent") != "transcription":
        await websocket.accept()  # first, so that the client reads why it is closed
        reason = "only transcription sessions are served: connect with ?intent=transcription"
        await websocket.close(CLOSE_POLICY, reason)
        return
    run = functools.partial(_session, server, websocket)
    await live_connection(server, websocket, run, "realtime")


async def _session(server: Server, websocket: WebSocket) -> None:
    turns = Turns(server)
    budget = AudioBudget(server.stream_limits.idle_timeout)
    await websocket.send_json(turns.event("session.created", session=turns.session_record))
    while True:
        message = await budget.wait(websocket.receive())
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        request: dict = {}
        try:
            request = _client_event(message.get("text") or message.get("bytes") or b"")
            answers = await _handle(turns, request, budget)
        except RealtimeError as err:
            error = {"type": "invalid_request_error", "code": err.code, "message": err.message}
            error |= {"param": err.param, "event_id": request.get("event_id")}
            answers = [turns.event("error", error=error)]
        for answer in answers:
            await websocket.send_json(answer)


def _client_event(text: str | bytes) -> dict:
    """A client event: a JSON object, by the one reader of untrusted JSON."""
    try:
        return json_object(text, "a client event")
    except ProtocolError as err:
        raise RealtimeError(err.reason, code="invalid_json") from None


async def _handle(turns: Turns, request: dict, budget: AudioBudget) -> list[dict]:
    kind = request.get("type")
    if kind in ("session.update", "transcription_session.update"):
        return await _update(turns, request.get("session"))
    if kind == "input_audio_buffer.append":
        pcm = _audio(request.get("audio"))
        stream = await _stream(turns)
        events = await asyncio.to_thread(stream.accept, pcm)
        budget.heard(len(pcm) / (2 * turns.rate))
        return _answers(turns, events)
    if kind == "input_audio_buffer.commit":
        if turns.stream is None or turns.item is None:
            raise RealtimeError(
                "the input audio buffer holds no speech to commit",
                code="input_audio_buffer_commit_empty",
            )
        events = await asyncio.to_thread(turns.stream.finish)
        answers = _answers(turns, events, commit=True)
        turns.drop_stream()
        return answers
    if kind == "input_audio_buffer.clear":
        turns.drop_stream()
        turns.item, turns.said = None, []
        return [turns.event("input_audio_buffer.cleared")]
    raise RealtimeError(f"unknown or unsupported event type {kind!r}", "type", "invalid_type")


def _audio(text) -> bytes:
    """An append's base64 audio as 16-bit PCM bytes."""
    if not isinstance(text, str):
        raise RealtimeError("audio must be a base64 string", "audio")
    try:
        pcm = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError("audio is not valid base64", "audio") from None
    if len(pcm) % 2:
        raise RealtimeError(f"16-bit PCM comes in whole samples: {len(pcm)} bytes", "audio")
    return pcm


async def _stream(turns: Turns) -> StreamSession:
    """The stream of the turn under way (a new one after a commit or clear)."""
    if turns.stream is None:
        server = turns.server
        args = (server.live, turns.rate, server.stream_limits, turns.options)
        turns.stream = await asyncio.to_thread(open_session, *args)
    return turns.stream


def _answers(turns: Turns, events: list[StreamEvent], commit: bool = False) -> list[dict]:
    """The server events of the stream's events: a turn starts with the first words heard;
    a final (server VAD) or the commit ends it."""
    answers = []
    for e in events:
        if turns.item is None and (e.raw_text or e.text):
            turns.item, turns.started = turns.new_id("item"), e.start
            start = turns.ms(e.start)
            answers.append(
                turns.event(
                    "input_audio_buffer.speech_started", audio_start_ms=start, item_id=turns.item
                )
            )
        if e.kind == "final" and e.text:
            turns.said.append(e.text)
            if turns.vad:
                answers += _end_turn(turns, e.end)
    if commit:
        end = max((e.end for e in events), default=0.0)
        answers += _end_turn(turns, end) if turns.item else []
    return answers


def _end_turn(turns: Turns, end: float) -> list[dict]:
    item, text = turns.item, " ".join(turns.said)
    turns.item, turns.said, previous, turns.previous = None, [], turns.previous, item
    usage = {"type": "duration", "seconds": round(max(0.0, end - turns.started), 3)}
    stopped = turns.event(
        "input_audio_buffer.speech_stopped", audio_end_ms=turns.ms(end), item_id=item
    )
    done = {"item_id": item, "content_index": 0}
    return [
        stopped,
        turns.event("input_audio_buffer.committed", item_id=item, previous_item_id=previous),
        turns.event("conversation.item.input_audio_transcription.delta", **done, delta=text),
        turns.event(
            "conversation.item.input_audio_transcription.completed",
            **done,
            transcript=text,
            usage=usage,
        ),
    ]


# --- session.update ----------------------------------------------------------------------


async def _update(turns: Turns, session) -> list[dict]:
    """A session.update: the audio format, transcription and turn detection it sets (the
    fields it leaves out keep their values). Only before the first audio of a turn."""
    if not isinstance(session, dict):
        raise RealtimeError("session must be an object", "session")
    if session.get("type", "transcription") != "transcription":
        raise RealtimeError("session.type must be 'transcription' here", "session.type")
    audio = session.get("audio", {})
    audio_in = audio.get("input", {}) if isinstance(audio, dict) else None
    if not isinstance(audio_in, dict):
        raise RealtimeError("session.audio.input must be an object", "session.audio.input")
    if turns.item is not None:
        raise RealtimeError(
            "the session is updated between turns, not while audio is buffered", "session"
        )
    rate = _format(audio_in.get("format"), turns.rate)
    transcription = audio_in.get("transcription") or {}
    if not isinstance(transcription, dict):
        raise RealtimeError("transcription must be an object", "session.audio.input.transcription")
    options = _transcription_options(turns, transcription)
    vad = audio_in.get("turn_detection", "unchanged")
    if vad != "unchanged":
        _check_vad(vad)
        turns.vad = vad is not None
    turns.drop_stream()
    turns.rate, turns.options = rate, options
    record_vad = {"type": "server_vad"} if turns.vad else None
    if isinstance(vad, dict):
        record_vad = vad
    turns.session_record = _session_record(rate, record_vad, transcription, session.get("include"))
    return [turns.event("session.updated", session=turns.session_record)]


def _format(spec, rate: int) -> int:
    """The input format's rate: audio/pcm (16-bit mono PCM) at 8-96 kHz, 24 kHz unless
    said; G.711 is refused."""
    if spec is None:
        return rate
    if isinstance(spec, str):  # the beta's "pcm16"
        spec = {"type": spec}
    if not isinstance(spec, dict) or spec.get("type") not in _FORMATS:
        kind = spec.get("type") if isinstance(spec, dict) else spec
        raise RealtimeError(
            f"audio format {kind!r} is not served: audio/pcm (16-bit mono PCM) only",
            "session.audio.input.format",
        )
    value = spec.get("rate", RATE)
    if not (isinstance(value, int) and 8_000 <= value <= 96_000):
        raise RealtimeError(
            f"audio/pcm rate must be an integer 8000-96000, got {value!r}",
            "session.audio.input.format.rate",
        )
    return value


def _transcription_options(turns: Turns, transcription: dict) -> DecodingOptions | None:
    """transcription.language (English only) and prompt (its words of 4+ letters favoured,
    as the HTTP API reads a prompt); model is the server's, whatever is named."""
    language = transcription.get("language")
    if language is not None and not is_english(language):
        raise RealtimeError(
            f"language {language!r} is not supported: this model transcribes English (en)",
            "session.audio.input.transcription.language",
        )
    prompt = transcription.get("prompt") or ""
    if not isinstance(prompt, str):
        raise RealtimeError("prompt must be a string", "session.audio.input.transcription.prompt")
    hints = prompt_hints(prompt[:20_000])
    server = turns.server
    try:
        return stream_options(server.live, None, server.stream_limits, "prompt", None, hints)
    except ProtocolError as err:
        raise RealtimeError(err.reason, "session.audio.input.transcription.prompt") from None


def _check_vad(vad) -> None:
    if vad is None:
        return
    if not isinstance(vad, dict) or vad.get("type") != "server_vad":
        kind = vad.get("type") if isinstance(vad, dict) else vad
        raise RealtimeError(
            f"turn_detection {kind!r} is not served: server_vad or null",
            "session.audio.input.turn_detection",
        )
    for key, (low, high) in _VAD_RANGES.items():
        value = vad.get(key)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (number and math.isfinite(value) and low <= value <= high):
            raise RealtimeError(
                f"turn_detection.{key} must be a number in [{low}, {high}], got {value!r}",
                f"session.audio.input.turn_detection.{key}",
            )


def _session_record(rate: int, vad, transcription, include) -> dict:
    """The session as session.created and session.updated describe it."""
    transcription = dict(transcription or {})
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": rate},
                "transcription": {"model": transcription.get("model") or "asr", **transcription},
                "turn_detection": vad,
                "noise_reduction": None,
            }
        },
        "include": include or [],
    }


def routes(server: Server) -> list[BaseRoute]:
    return [WebSocketRoute(URL, functools.partial(realtime, server))]


PROTOCOL = Protocol(routes)
