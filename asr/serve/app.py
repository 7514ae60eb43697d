"""The application: every protocol of `PROTOCOLS` on one Starlette app (uvicorn), behind the
guards, around one `Server`; plus GET /health and the page at GET /.

The model is loaded once and shared by `workers` threads (it is read-only; the beam
decoder's one `decode` call holds the GIL).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asr.inference.recognizer import Recognizer
from asr.serve import realtime, transcriptions, vosk, wyoming
from asr.serve.config import ServeConfig
from asr.serve.connections import uvicorn_options
from asr.serve.errors import EXCEPTION_HANDLERS
from asr.serve.guards import BodyLimit, OriginGuard, RequestLog, allowed_hosts
from asr.serve.server import Protocol, Server

__all__ = ["PROTOCOLS", "create_app", "run_server", "server_app"]

log = logging.getLogger("asr.serve")

# Every protocol the server speaks: a module with a `PROTOCOL` (its routes, its own port).
PROTOCOLS: dict[str, Protocol] = {
    "openai": transcriptions.PROTOCOL,  # POST /v1/audio/transcriptions, GET /v1/models
    "vosk": vosk.PROTOCOL,  # WebSocket /v1/stream
    "realtime": realtime.PROTOCOL,  # WebSocket /v1/realtime?intent=transcription (OpenAI)
    "wyoming": wyoming.PROTOCOL,  # TCP, --wyoming-port
}

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The page's files, by URL: served from memory, so no request path reaches the file system.
_STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/recorder-worklet.js": ("recorder-worklet.js", "text/javascript; charset=utf-8"),
}


async def health(server: Server, _request: Request) -> Response:
    queue = server.queue
    live = server.live.source if server.live else None
    status = {"status": "ok", "model": server.recognizer.source, "stream_model": live}
    status |= {"pending": queue.pending}
    return JSONResponse({**status, "capacity": queue.capacity})


async def static_file(files: dict[str, tuple[bytes, str]], request: Request) -> Response:
    contents, media_type = files[request.url.path]
    return Response(contents, media_type=media_type)


def _page_routes(server: Server) -> list[Route]:
    files = _STATIC_FILES.items()
    loaded = {url: ((STATIC_DIR / name).read_bytes(), kind) for url, (name, kind) in files}
    page = functools.partial(static_file, loaded)
    routes = [Route("/health", functools.partial(health, server), methods=["GET"])]
    return routes + [Route(url, page, methods=["GET"]) for url in _STATIC_FILES]


def _lifespan(server: Server):
    """Each protocol's own listener while the app runs; the queue shut down after."""

    @asynccontextmanager
    async def lifespan(_app: Starlette):
        listeners = [await p.listen(server) for p in PROTOCOLS.values() if p.listen]
        yield
        for listening in listeners:
            if listening is not None:
                with contextlib.suppress(Exception):
                    listening.close()
        server.queue.shutdown()

    return lifespan


def server_app(server: Server) -> Starlette:
    """The ASGI application of `server`: every protocol's routes, the page, the guards."""
    config = server.config
    routes = [r for p in PROTOCOLS.values() for r in p.routes(server)] + _page_routes(server)
    middleware = [
        Middleware(RequestLog),
        Middleware(OriginGuard, allowed_hosts(config), frozenset(config.allow_origin)),
        Middleware(BodyLimit, config.max_upload_bytes, config.read_timeout),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=_lifespan(server),
    )


def create_app(
    recognizer: Recognizer, config: ServeConfig | None = None, streamer: Recognizer | None = None
) -> Starlette:
    """The ASGI application around a loaded Recognizer, decoding with its own options
    (`load_model(path, **decoding)`), and `streamer` for live streams (None: the recognizer
    where it can stream); `server_app(Server(...))` keeps the server in hand."""
    return server_app(Server(recognizer, config or ServeConfig(), streamer))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(
    recognizer: Recognizer, config: ServeConfig, streamer: Recognizer | None = None
) -> None:
    """Serve until interrupted: `recognizer` for files, `streamer` (or the recognizer, where
    it can) for live streams."""
    if not is_loopback(config.host):
        log.warning(
            "listening on %s: anyone who reaches this address can use the server "
            "(it has no authentication)",
            config.host,
        )
    server = Server(recognizer, config, streamer)
    log.log(logging.INFO if server.live else logging.WARNING, "%s", server.live_note)
    app = server_app(server)
    uvicorn.run(app, host=config.host, port=config.port, **uvicorn_options(config))
