"""How errors become answers. Each API declares its own table of answers (`ErrorTable`) and mounts
it with Starlette's exception middleware (`exception_handlers_for`); what the HTTP edge itself finds
wrong is answered alike everywhere (`EDGE_HANDLERS`), and the app answers anything else 500.

Every answer has FastAPI's shape, `{"detail": "..."}` or, for validation errors, `{"detail": [{"type",
"loc", "msg"}]}`, so clients of either old service keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from application.errors import CacheUnavailable
from application.limits import RateLimited
from domain.errors import (
    InvalidCredentials,
    InvalidEmail,
    InvalidPassword,
    InvalidPostText,
    NotAuthenticated,
    PostQuotaExceeded,
    PostTooLarge,
    StorageUnavailable,
    UserAlreadyExists,
)
from entrypoints.http.responses import JSON

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"
Handler = Callable[[Request, Exception], Awaitable[Response]]
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class RequestValidationError(Exception):
    """A request the edge rejects with 422; `errors` are FastAPI-shaped items."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__("request validation failed")
        self.errors = list(errors)


def field_error(
    location: Sequence[str | int], message: str, kind: str = "value_error"
) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": list(location), "msg": message}])


@attrs.frozen
class Answer:
    status: int
    # None: the error's own message.
    detail: str | None = None
    # Set for errors about one body field: answered as a 422 item at ("body", field).
    field: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    # Headers that depend on the error itself.
    headers_of: Callable[[Any], Mapping[str, str]] | None = None

    async def __call__(self, request: Request, exc: Exception) -> Response:
        if self.status >= 500:
            # The cause names what failed underneath (the driver's error); the client is told neither.
            log.warning(
                "%s %s answered %s: %r caused by %r",
                request.method,
                request.url.path,
                self.status,
                exc,
                exc.__cause__,
            )
        if self.field is not None:
            detail: Any = [{"type": "value_error", "loc": ["body", self.field], "msg": str(exc)}]
        else:
            detail = self.detail if self.detail is not None else str(exc)
        headers = self.headers if self.headers_of is None else {**self.headers, **self.headers_of(exc)}
        return JSON({"detail": detail}, self.status, headers)


def _retry_after(error: RateLimited) -> Mapping[str, str]:
    return {"Retry-After": str(error.retry_after)}


# An error class and its subclasses, unless a subclass has an answer of its own.
ErrorTable = Mapping[type[Exception], Answer]

UNAVAILABLE = Answer(
    503,
    "Service temporarily unavailable, retry shortly",
    headers={"Retry-After": RETRY_AFTER_SECONDS},
)
# What both APIs answer alike; each API's own table comes on top.
SHARED_ANSWERS: ErrorTable = {
    StorageUnavailable: UNAVAILABLE,
    CacheUnavailable: UNAVAILABLE,
    NotAuthenticated: Answer(401, headers=BEARER_CHALLENGE),
    InvalidEmail: Answer(422, field="email"),
    InvalidPassword: Answer(422, field="password"),
    PostQuotaExceeded: Answer(403, "Post quota exceeded"),
    RateLimited: Answer(429, headers_of=_retry_after),
}


async def validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSON({"detail": exc.errors}, 422)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSON({"detail": exc.detail}, exc.status_code, exc.headers)


async def client_disconnected(_request: Request, _exc: Exception) -> Response:
    # The client hung up before its body was complete: nobody reads this answer, and it is the
    # client's doing, not a server error (FastAPI answers 400 too).
    return JSON({"detail": "Client disconnected before the request body was complete"}, 400)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSON({"detail": "Internal Server Error"}, 500)


# Everywhere, the app's own included (probes, docs, unknown paths); what no table answers is
# `server_error`'s.
EDGE_HANDLERS: Mapping[Any, Handler] = {
    RequestValidationError: validation_error,
    HTTPException: http_error,
    ClientDisconnect: client_disconnected,
}


def worded(*, text_field: str, too_large: str, already_exists: str, bad_credentials: Answer) -> ErrorTable:
    """The answers every API gives to a bad post text, a taken email and a failed login, in its words."""
    return {
        InvalidPostText: Answer(422, field=text_field),
        PostTooLarge: Answer(413, too_large),
        UserAlreadyExists: Answer(400, already_exists),
        InvalidCredentials: bad_credentials,
    }


def exception_handlers_for(table: ErrorTable) -> dict[Any, Handler]:
    """One API's handlers: its table over the shared answers and the edge's own."""
    return {**EDGE_HANDLERS, **SHARED_ANSWERS, **table}


def handler_for(handlers: Mapping[Any, Handler], exc: Exception) -> Handler | None:
    """The handler of the nearest class of `exc` that has one, as Starlette's exception layer
    looks it up."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
