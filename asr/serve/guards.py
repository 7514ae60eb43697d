"""The ASGI guards around every route, HTTP and WebSocket alike: which Host and Origin may
use the server (`OriginGuard`), how large and how slow a request body may be (`BodyLimit`),
and one log line per request (`RequestLog`)."""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.responses import Response

from asr.serve.config import ServeConfig
from asr.serve.errors import ApiError, error_response
from asr.serve.streaming import CLOSE_POLICY

__all__ = ["BodyLimit", "OriginGuard", "RequestLog", "allowed_hosts"]

log = logging.getLogger("asr.serve")


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
            return await error_response(400, "invalid Content-Length header")(scope, receive, send)
        if declared is not None and int(declared) > self.max_bytes:
            response = error_response(413, _too_large(self.max_bytes))
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
    return await error_response(403, message)(scope, receive, send)


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
