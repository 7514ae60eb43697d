"""`asr serve`: a local transcription server with the OpenAI-style API, and a page to try it.

asr serve [--model PATH] [--host 127.0.0.1] [--port 8000] [--workers N]

POST /v1/audio/transcriptions   multipart form, OpenAI's fields:
    file             the audio (required): any format soundfile reads
    response_format  json (default), text, srt, vtt or verbose_json (segments and words)
    language         only "en" (the model is English)
    hotwords         words and phrases to favour, comma- or line-separated, each with an
                     optional ":boost" ("Nautilus, Captain Nemo:8"; asr/hotwords.py)
    prompt           as Whisper reads it, a vocabulary hint: its words of 4 letters or
                     more become hotwords (boost PROMPT_BOOST), beside `hotwords`
    model, temperature, timestamp_granularities[]   accepted and ignored: one model is
                     loaded, decoding is deterministic, and verbose_json always has
                     segments and words
GET /health   model and queue state
GET /         a page: upload a file or record from the microphone, see the timed words

Starlette on uvicorn. The model is loaded once and shared by `workers` threads (it is
read-only; the beam decoder's one `decode` call holds the GIL). Each upload is copied to
a temporary file of the server's own naming, removed when the request ends; long
recordings are split at pauses as `asr transcribe` splits them. Errors are JSON in
OpenAI's shape, {"error": {"message", "type", "param", "code"}}; undecodable audio gets
asr.audio's own message, with the client's file name in place of the temporary path.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from asr.audio import AudioError, audio_info
from asr.decode import DecodingOptions
from asr.hotwords import MAX_LIST_CHARS, Hotword, HotwordError
from asr.inference import formats
from asr.inference.recognizer import Recognizer, Transcript
from asr.inference.segment import SegmentConfig
from asr.serve_config import ServeConfig
from asr.serve_stream import (
    CLOSE_POLICY,
    MAX_MESSAGE_BYTES,
    StreamLimits,
    StreamSlots,
    vosk_stream,
    wyoming_server,
)
from asr.text import normalize_text

__all__ = ["RESPONSE_FORMATS", "RecognitionQueue", "ServeConfig", "create_app", "run_server"]

log = logging.getLogger("asr.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page's files, by URL: served from memory, so no request path reaches the file system.
_STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/recorder-worklet.js": ("recorder-worklet.js", "text/javascript; charset=utf-8"),
}
# Fields of OpenAI's transcription request that change nothing here (see the module docstring).
_IGNORED_FIELDS = ("model", "temperature")
_IGNORED_FIELDS += ("timestamp_granularities", "timestamp_granularities[]")
_FIELDS = ("file", "response_format", "language", "hotwords", "prompt", *_IGNORED_FIELDS)
PROMPT_BOOST = 3.0  # per word of a prompt's hotwords (their own list's default is higher)
_PROMPT_MIN_LETTERS = 4  # shorter prompt words ("the", "and") are not hotwords
_LANGUAGES = ("en",)
_WHERE = "field 'hotwords'"  # how errors name the hotwords field


class ApiError(Exception):
    """A request answered with `status` and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


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
class _Server:
    """What the request handlers share: the model, its decoding options and the limits."""

    recognizer: Recognizer
    config: ServeConfig
    queue: RecognitionQueue
    static: dict[str, tuple[bytes, str]]  # URL -> (contents, media type)

    def __post_init__(self) -> None:
        self.stream_limits = stream_limits(self.config)  # live streams (asr/serve_stream.py)
        self.stream_slots = StreamSlots(self.config.max_streams)


# --- responses ---------------------------------------------------------------------------


def _json(t: Transcript) -> Response:
    return JSONResponse({"text": t.text})


def _text(t: Transcript) -> Response:
    return PlainTextResponse(formats.to_txt(t.text))


def _srt(t: Transcript) -> Response:
    return PlainTextResponse(formats.to_srt(t.words, t.text, t.duration))


def _vtt(t: Transcript) -> Response:
    return PlainTextResponse(formats.to_vtt(t.words, t.text, t.duration), media_type="text/vtt")


def _verbose_json(t: Transcript) -> Response:
    """OpenAI's verbose_json: segments are the subtitle cues of srt/vtt; words carry their
    confidence too. No tokens, avg_logprob or no_speech_prob: a CTC model has no such thing."""
    cues = formats.make_cues(t.words)
    segments = [
        {"id": i, "start": round(c.start, 3), "end": round(c.end, 3), "text": c.text}
        for i, c in enumerate(cues)
    ]
    record = {
        "task": "transcribe",
        "language": "english",
        "duration": round(t.duration, 3),
        "text": t.text,
        "segments": segments,
        "words": [w.to_dict() for w in t.words],
    }
    return JSONResponse(record)


@dataclass(frozen=True)
class ResponseFormat:
    respond: Callable[[Transcript], Response]
    timed: bool  # needs timed words (recognized with word_timestamps)


# OpenAI's response formats; the subtitles are the CLI's own formats (formats.FORMATS).
RESPONSE_FORMATS = {
    "json": ResponseFormat(_json, False),
    "text": ResponseFormat(_text, formats.FORMATS["txt"].timed),
    "srt": ResponseFormat(_srt, formats.FORMATS["srt"].timed),
    "vtt": ResponseFormat(_vtt, formats.FORMATS["vtt"].timed),
    "verbose_json": ResponseFormat(_verbose_json, True),
}


def _error_body(status: int, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    error = {"message": message, "type": kind, "param": param, "code": status}
    return JSONResponse({"error": error}, status_code=status)


async def _api_error(_request: Request, err: Exception) -> Response:
    assert isinstance(err, ApiError)
    return _error_body(err.status, err.message, err.param)


async def _http_error(_request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    return _error_body(err.status_code, str(err.detail))


async def _client_gone(request: Request, err: Exception) -> Response:
    """The client left mid-request: its own doing, one quiet line (RequestLog's), no trace."""
    request.scope.setdefault("state", {})["note"] = "client disconnected"
    return _error_body(400, "client disconnected")


async def _internal_error(_request: Request, err: Exception) -> Response:
    log.error("internal error", exc_info=err)
    return _error_body(500, f"internal error ({type(err).__name__}); see the server log")


# --- the transcription endpoint ----------------------------------------------------------


@dataclass
class _Params:
    upload: UploadFile
    response_format: str
    name: str  # the client's file name, for messages only: never a path here
    options: DecodingOptions  # the server's, with the hotwords and prompt fields' hotwords


def _request_options(form: FormData, recognizer: Recognizer, limit: int) -> DecodingOptions:
    """The options of a request: its hotwords field, and its prompt as hints (words of 4
    letters or more, boost PROMPT_BOOST), through the one door (`Recognizer.options`); a
    HotwordError is a 400 naming the field."""
    prompt = str(form.get("prompt") or "")
    if len(prompt) > MAX_LIST_CHARS:
        raise ApiError(400, f"field 'prompt' is longer than {MAX_LIST_CHARS} characters", "prompt")
    hinted = [w for w in normalize_text(prompt).split() if len(w) >= _PROMPT_MIN_LETTERS]
    hints = [Hotword((w,), PROMPT_BOOST) for w in dict.fromkeys(hinted)]
    try:
        return recognizer.options(str(form.get("hotwords") or ""), limit, hints, where=_WHERE)
    except HotwordError as err:
        raise ApiError(400, str(err), "hotwords") from None


def _parse_form(form: FormData, recognizer: Recognizer, max_hotwords: int) -> _Params:
    """Validate the request fields (names, response_format, language, the file part)."""
    for key, value in form.multi_items():
        if key not in _FIELDS:
            raise ApiError(400, f"unknown field {key!r}; accepted: {', '.join(_FIELDS)}", key)
        if key != "file" and not isinstance(value, str):
            raise ApiError(400, f"field {key!r} must be text, not a file", key)
    upload = form.get("file")
    if upload is None:
        raise ApiError(400, "missing field 'file': the audio, as a multipart file part", "file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "field 'file' must be a file part (with a filename)", "file")
    response_format = str(form.get("response_format") or "json")
    if response_format not in RESPONSE_FORMATS:
        choices = ", ".join(RESPONSE_FORMATS)
        message = f"response_format {response_format!r} is not one of {choices}"
        raise ApiError(400, message, "response_format")
    language = str(form.get("language") or "en")
    if language.lower() not in _LANGUAGES:
        message = f"language {language!r} is not supported: this model transcribes English (en)"
        raise ApiError(400, message, "language")
    name = PurePath(upload.filename or "").name or "upload"
    options = _request_options(form, recognizer, max_hotwords)
    return _Params(upload, response_format, name, options)


@contextmanager
def _upload_file(upload_dir: str | None) -> Iterator[Path]:
    """A fresh temporary file of the server's naming, removed on exit whatever happened."""
    fd, name = tempfile.mkstemp(prefix="asr-upload-", dir=upload_dir)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _copy_upload(upload: UploadFile, path: Path) -> int:
    """Copy the spooled upload to `path`; return its size in bytes."""
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, 2**20)
    return path.stat().st_size


def _recognize(
    recognizer: Recognizer,
    path: Path,
    options: DecodingOptions | None,
    word_timestamps: bool,
    config: ServeConfig,
) -> tuple[Transcript, float]:
    """One file through the public Recognizer API (a worker thread); (transcript, seconds)."""
    started = time.perf_counter()
    segment = SegmentConfig(max_seconds=config.max_seconds)
    (transcript,) = recognizer.transcribe(
        [path], options, config.batch_size, word_timestamps=word_timestamps, segment=segment
    )
    return transcript, time.perf_counter() - started


def _client_message(err: AudioError, path: Path, name: str) -> str:
    """asr.audio's message with the client's file name where it says the temporary path."""
    return str(err).replace(str(path), name)


async def _run_recognition(server: _Server, path: Path, params: _Params, deadline: float):
    """Queue the recognition and wait for it until `deadline` (event-loop time)."""
    timed = RESPONSE_FORMATS[params.response_format].timed
    args = (server.recognizer, path, params.options, timed, server.config)
    try:
        future = server.queue.submit(_recognize, *args)
    except QueueFull as err:
        raise ApiError(503, f"server busy ({err}); try again later") from err
    remaining = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        # On timeout, a recognition still waiting is cancelled; a running one finishes
        # unobserved (a thread cannot be stopped), holding its worker until then.
        return await asyncio.wait_for(asyncio.wrap_future(future), remaining)
    except TimeoutError as err:
        limit = server.config.timeout
        raise ApiError(504, f"{params.name}: not transcribed within {limit:g} s") from err
    except AudioError as err:
        raise ApiError(400, _client_message(err, path, params.name), "file") from err


def _check_duration(path: Path, name: str, limit: float) -> None:
    """413 for audio that decodes to more than `limit` seconds, read from its header before
    any decoding (a 12 KB file can claim hours); 400 for a header that cannot be read."""
    try:
        seconds = audio_info(path).duration
    except AudioError as err:
        raise ApiError(400, _client_message(err, path, name), "file") from err
    if seconds > limit:
        message = f"{name}: {seconds:.0f} s of audio; this server transcribes at most {limit:g} s"
        raise ApiError(413, message + " (asr serve --max-audio-seconds)", "file")


async def transcriptions(request: Request) -> Response:
    server: _Server = request.app.state.server
    if server.queue.full:  # refuse before reading the upload
        raise ApiError(503, "server busy: every worker and queue place is taken; try later")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(400, f"expected a multipart/form-data body, got {content_type!r}")
    async with request.form(max_files=1, max_fields=len(_FIELDS)) as form:
        params = _parse_form(form, server.recognizer, server.config.max_hotwords)
        with _upload_file(server.config.upload_dir) as path:
            size = await run_in_threadpool(_copy_upload, params.upload, path)
            if size == 0:
                raise ApiError(400, f"{params.name}: the uploaded file is empty", "file")
            _check_duration(path, params.name, server.config.max_audio_seconds)
            # --timeout counts from here: a slow upload is --read-timeout's to judge
            deadline = asyncio.get_running_loop().time() + server.config.timeout
            transcript, seconds = await _run_recognition(server, path, params, deadline)
    request.state.audio_seconds = transcript.duration
    request.state.recognition_seconds = seconds
    return RESPONSE_FORMATS[params.response_format].respond(transcript)


# --- other endpoints ---------------------------------------------------------------------


async def health(request: Request) -> Response:
    server: _Server = request.app.state.server
    queue = server.queue
    status = {"status": "ok", "model": server.recognizer.source, "pending": queue.pending}
    return JSONResponse({**status, "capacity": queue.capacity})


async def static_file(request: Request) -> Response:
    contents, media_type = request.app.state.server.static[request.url.path]
    return Response(contents, media_type=media_type)


# --- middleware --------------------------------------------------------------------------


class _LimitedReceive:
    """An ASGI `receive` that raises 413 once the body passes `max_bytes`, and 408 when
    the client sends nothing for `timeout` seconds (a stalled upload holds no connection)."""

    def __init__(self, receive, max_bytes: int, timeout: float) -> None:
        self.receive, self.max_bytes, self.received = receive, max_bytes, 0
        self.timeout = timeout

    async def __call__(self):
        try:
            message = await asyncio.wait_for(self.receive(), self.timeout)
        except TimeoutError:
            message = f"the upload stalled: nothing received for {self.timeout:g} s"
            raise ApiError(408, message + " (asr serve --read-timeout)") from None
        self.received += len(message.get("body", b""))
        if self.received > self.max_bytes:
            raise ApiError(413, _too_large(self.max_bytes))
        return message


def _too_large(max_bytes: int) -> str:
    return f"request body larger than the server's limit of {max_bytes / 2**20:.3g} MiB"


class BodyLimit:
    """413 for bodies over `max_bytes`: at once when Content-Length says so (nothing is
    read), else as soon as the bytes received pass the limit (chunked uploads)."""

    def __init__(self, app, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            return await _error_body(400, "invalid Content-Length header")(scope, receive, send)
        if declared is not None and int(declared) > self.max_bytes:
            response = _error_body(413, _too_large(self.max_bytes))
            return await response(scope, receive, send)
        await self.app(scope, _LimitedReceive(receive, self.max_bytes, self.timeout), send)


class OriginGuard:
    """Only the names the server is bound to (Host), and only its own page or the allowed
    origins (Origin): no other web page can make it work, and a DNS-rebound name reads
    nothing. Browsers send Origin on every cross-origin request and on POSTs; a request
    without one (curl, an app, the OpenAI client) is not a page's and passes. Preflight
    (OPTIONS) of an allowed origin is answered with what it may send."""

    def __init__(self, app, hosts: frozenset[str] | None, origins: frozenset[str]) -> None:
        self.app, self.hosts, self.origins = app, hosts, origins  # hosts None: any

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if self.hosts is not None and _host_name(host) not in self.hosts:
            message = f"Host {host!r} is not a name this server answers (asr serve --allow-host)"
            return await _refuse(scope, receive, send, message)
        origin = headers.get(b"origin", b"").decode("latin-1").lower().rstrip("/")
        allowed = not origin or origin == f"http://{host}" or origin in self.origins
        if not allowed:
            message = f"cross-origin request from {origin} refused (asr serve --allow-origin)"
            return await _refuse(scope, receive, send, message)
        if scope["type"] == "websocket":  # a page's own socket: no CORS headers to add
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS":
            return await _preflight(origin)(scope, receive, send)
        await self.app(scope, receive, _with_cors(send, origin) if origin else send)


async def _refuse(scope, receive, send, message: str) -> None:
    """403 with `message`; a WebSocket handshake is refused (HTTP 403) before it opens."""
    if scope["type"] == "websocket":
        log.info("WebSocket refused: %s", message)
        return await send({"type": "websocket.close", "code": CLOSE_POLICY, "reason": message})
    return await _error_body(403, message)(scope, receive, send)


def _host_name(host: str) -> str:
    """The name of a Host header without its port ("[::1]:8000" -> "::1")."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _preflight(origin: str) -> Response:
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "content-type, authorization",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
    return Response(status_code=204, headers=headers)


def _with_cors(send, origin: str):
    """An ASGI `send` adding the allowed origin to the response's headers."""

    async def cors_send(message) -> None:
        if message["type"] == "http.response.start":
            extra = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return cors_send


def allowed_hosts(config: ServeConfig) -> frozenset[str] | None:
    """The Host names the server answers: loopback names, --host, --allow-host; None (any)
    when it listens on every address (0.0.0.0, ::) and no --allow-host narrows it."""
    if config.host in ("0.0.0.0", "::") and not config.allow_host:
        return None
    return frozenset({"localhost", "127.0.0.1", "::1", config.host.lower(), *config.allow_host})


class _StatusSend:
    """An ASGI `send` that remembers the response status."""

    def __init__(self, send) -> None:
        self.send, self.status = send, 500  # 500 until the app says otherwise

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class RequestLog:
    """One log line per request: method, path, status, seconds; for a transcription also
    the audio seconds and the real-time factor (recognition seconds / audio seconds)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        state = scope.setdefault("state", {})  # what handlers set on request.state
        status_send = _StatusSend(send)
        try:
            await self.app(scope, receive, status_send)
        finally:
            seconds = time.perf_counter() - started
            line = f"{scope['method']} {scope['path']} {status_send.status} in {seconds:.3f} s"
            if state.get("note"):
                line += f" ({state['note']})"
            audio = state.get("audio_seconds")
            if audio:
                rtf = state["recognition_seconds"] / audio
                line += f", audio {audio:.2f} s, RTF {rtf:.3f}"
            log.info(line)


# --- the application ---------------------------------------------------------------------


def _load_static() -> dict[str, tuple[bytes, str]]:
    files = _STATIC_FILES.items()
    return {url: ((STATIC_DIR / name).read_bytes(), kind) for url, (name, kind) in files}


@asynccontextmanager
async def _lifespan(app: Starlette):
    server: _Server = app.state.server
    wyoming = None
    if server.config.wyoming_port:
        host, port = server.config.host, server.config.wyoming_port
        limits, slots = server.stream_limits, server.stream_slots
        wyoming = await wyoming_server(server.recognizer, host, port, limits, slots)
        log.info("Wyoming protocol on tcp://%s:%d", host, port)
    yield
    if wyoming is not None:
        wyoming.close()
    server.queue.shutdown()


def create_app(recognizer: Recognizer, config: ServeConfig | None = None) -> Starlette:
    """The ASGI application around a loaded Recognizer, decoding with its own options
    (`load_model(path, **decoding)`)."""
    config = config or ServeConfig()
    routes = [
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        WebSocketRoute("/v1/stream", vosk_stream),
        *(Route(url, static_file, methods=["GET"]) for url in _STATIC_FILES),
    ]
    middleware = [
        Middleware(RequestLog),
        Middleware(OriginGuard, allowed_hosts(config), frozenset(config.allow_origin)),
        Middleware(BodyLimit, config.max_upload_bytes, config.read_timeout),
    ]
    handlers = {ApiError: _api_error, HTTPException: _http_error, ClientDisconnect: _client_gone}
    handlers[Exception] = _internal_error
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=_lifespan
    )
    queue = RecognitionQueue(config.workers, config.max_queue)
    app.state.server = _Server(recognizer, config, queue, _load_static())
    return app


def stream_limits(config: ServeConfig) -> StreamLimits:
    return StreamLimits(
        config.max_streams,
        config.stream_idle_timeout,
        config.max_stream_seconds,
        config.max_hotwords,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(recognizer: Recognizer, config: ServeConfig) -> None:
    """Serve until interrupted."""
    if not is_loopback(config.host):
        log.warning(
            "listening on %s: anyone who reaches this address can use the server "
            "(it has no authentication)",
            config.host,
        )
    app = create_app(recognizer, config)
    # access_log off: RequestLog writes the one line per request.
    limits = {"limit_concurrency": config.max_connections, "timeout_keep_alive": 5}
    limits["ws_max_size"] = MAX_MESSAGE_BYTES + 1024  # one message's audio and its frame
    uvicorn.run(app, host=config.host, port=config.port, access_log=False, **limits)
