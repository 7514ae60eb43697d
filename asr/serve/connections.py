"""What a connection may do before the app sees a request: the HTTP server's (uvicorn's)
options, written once here (`uvicorn_options`), and the bound on the time to a complete
request head (`HeadTimeoutProtocol`), which uvicorn does not have.

uvicorn counts every open connection against `limit_concurrency` (serve.max_connections)
and answers 503 past it, but a connection that never finishes its request head was kept
for as long as the client liked: 64 silent sockets, or a header line every 10 s, shut the
API out. A connection now has `head_timeout` seconds from its opening (or from the end of
its last response) to a complete head; then it is answered 408 (if it sent part of one)
and closed. Bodies and WebSocket streams have their own limits (guards.BodyLimit,
streaming.AudioBudget).
"""

from __future__ import annotations

import asyncio
import json
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from asr.serve.config import ServeConfig
from asr.serve.streaming import MAX_MESSAGE_BYTES

__all__ = ["HeadTimeoutProtocol", "head_timeout_protocol", "uvicorn_options"]

log = logging.getLogger("asr.serve")


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11), with at most `head_timeout` seconds from the
    connection's opening, or its last response's end, to a complete request head."""

    head_timeout = 10.0  # seconds; head_timeout_protocol(seconds) gives a class with another
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """The timer runs while the connection waits for a request head, and only then (a
        WebSocket upgrade or a request being read or answered stops it)."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not waiting:
            self._stop_head_timer()
        elif self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        partial, _closed = self.conn.trailing_data
        if partial:  # part of a head came: say why (an idle connection is just closed)
            self.transport.write(_timeout_response(self.head_timeout))
            log.info("closed a connection: no complete request head in %g s", self.head_timeout)
        self.transport.close()


def _timeout_response(seconds: float) -> bytes:
    """408 in OpenAI's error shape (errors.error_response), written by hand: h11 has no
    request to answer."""
    message = f"no complete request head in {seconds:g} s (asr serve --head-timeout)"
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": 408}
    body = json.dumps({"error": error}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def head_timeout_protocol(seconds: float) -> type[HeadTimeoutProtocol]:
    """HeadTimeoutProtocol bounded at `seconds` (uvicorn takes a class, not an instance)."""
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"head_timeout": seconds})


def uvicorn_options(config: ServeConfig) -> dict:
    """uvicorn's options for `config`, besides the app and the address (`uvicorn.run(app,
    host=..., port=..., **uvicorn_options(config))`)."""
    return {
        "http": head_timeout_protocol(config.head_timeout),
        "limit_concurrency": config.max_connections,
        "timeout_keep_alive": 5,
        "ws_max_size": MAX_MESSAGE_BYTES + 1024,  # one message's audio and its frame
        "access_log": False,  # RequestLog writes the one line per request
    }
