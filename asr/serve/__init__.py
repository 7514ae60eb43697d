"""`asr serve`: a local transcription server, a module per protocol around one `Server`.

asr serve [--model PATH] [--host 127.0.0.1] [--port 8000] [--workers N] [--wyoming-port P]

    config.py          ServeConfig: the limits and address (its fields are the serve flags)
    server.py          Server, what every protocol is handed (model, limits, queue, slots),
                       and Protocol, what a protocol module gives back
    streaming.py       what the live-stream protocols share: limits, slots, a session over
                       Recognizer.stream, ProtocolError, their one JSON reader
    errors.py          HTTP errors in OpenAI's JSON shape
    guards.py          Host/Origin checks, body size and time limits, the request log
    connections.py     uvicorn's options and the time a connection has to a request head
    transcriptions.py  OpenAI's transcription API: POST /v1/audio/transcriptions
    vosk.py            the Vosk protocol: WebSocket /v1/stream
    wyoming.py         the Wyoming protocol (Home Assistant): its own TCP port
    app.py             PROTOCOLS (name -> Protocol), the app, GET /health and the page at /

A protocol only translates: bytes to audio and fields, results and errors to its answers
(HotwordError: 400, or a close with 1007/1008). A request's decoding options come from
`server.recognizer.options(...)` (asr/inference/recognizer.py), nowhere else. To add a
protocol: a module with `PROTOCOL = Protocol(routes, listen)` (its endpoints, taking the
Server as their first argument, and its own port if any), one line in `app.PROTOCOLS`.

The names below are imported on first use: the CLI reads ServeConfig without the server's
dependencies (the `serve` extra: starlette, uvicorn).
"""

from __future__ import annotations

import functools

from asr.lazy import lazy_attribute, lazy_names

_EXPORTS = {
    "PROMPT_BOOST": "asr.serve.transcriptions",
    "PROTOCOLS": "asr.serve.app",
    "RESPONSE_FORMATS": "asr.serve.transcriptions",
    "RecognitionQueue": "asr.serve.server",
    "ServeConfig": "asr.serve.config",
    "Server": "asr.serve.server",
    "create_app": "asr.serve.app",
    "run_server": "asr.serve.app",
    "server_app": "asr.serve.app",
}

__all__ = sorted(_EXPORTS)


__getattr__ = functools.partial(lazy_attribute, globals(), _EXPORTS)
__dir__ = functools.partial(lazy_names, globals(), _EXPORTS)
