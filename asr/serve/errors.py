"""HTTP errors as JSON in OpenAI's shape, {"error": {"message", "type", "param", "code"}},
whichever route or guard raises them: `ApiError` in a handler, `error_response` in an ASGI
middleware, and the exception handlers that turn everything else into one."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

__all__ = ["ApiError", "EXCEPTION_HANDLERS", "error_response"]

log = logging.getLogger("asr.serve")


class ApiError(Exception):
    """A request answered with `status` and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    error = {"message": message, "type": kind, "param": param, "code": status}
    return JSONResponse({"error": error}, status_code=status)


async def _api_error(_request: Request, err: Exception) -> Response:
    assert isinstance(err, ApiError)
    return error_response(err.status, err.message, err.param)


async def _http_error(_request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    return error_response(err.status_code, str(err.detail))


async def _client_gone(request: Request, err: Exception) -> Response:
    """The client left mid-request: its own doing, one quiet line (RequestLog's), no trace."""
    request.scope.setdefault("state", {})["note"] = "client disconnected"
    return error_response(400, "client disconnected")


async def _internal_error(_request: Request, err: Exception) -> Response:
    log.error("internal error", exc_info=err)
    return error_response(500, f"internal error ({type(err).__name__}); see the server log")


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    HTTPException: _http_error,
    ClientDisconnect: _client_gone,
    Exception: _internal_error,
}
