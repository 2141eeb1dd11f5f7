"""The error table: how each domain error, and each error the HTTP edge finds itself, is answered.

Every answer has FastAPI's shape, `{"detail": "..."}` or, for validation errors, `{"detail": [{"type",
"loc", "msg"}]}`, so clients of either old service keep working. Each API mounts its own table
(`ERROR_TABLE_SCOPE_KEY`); the handlers here are the only ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from application.errors import CacheUnavailable
from application.limits import RateLimited
from domain.errors import (
    DomainError,
    InfrastructureError,
    InvalidCredentials,
    InvalidEmail,
    InvalidPassword,
    InvalidPostText,
    NotAuthenticated,
    PostNotFound,
    PostQuotaExceeded,
    PostTooLarge,
    StorageUnavailable,
    UserAlreadyExists,
)
from entrypoints.http.responses import JSON

log = logging.getLogger(__name__)

ERROR_TABLE_SCOPE_KEY = "hexpost.error_table"
RETRY_AFTER_SECONDS = "5"
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


def _retry_after(error: RateLimited) -> Mapping[str, str]:
    return {"Retry-After": str(error.retry_after)}


ErrorTable = Mapping[type[DomainError | InfrastructureError], Answer]

_UNAVAILABLE = Answer(
    503,
    "Service temporarily unavailable, retry shortly",
    headers={"Retry-After": RETRY_AFTER_SECONDS},
)

CANONICAL_ERRORS: ErrorTable = {
    InvalidEmail: Answer(422, field="email"),
    InvalidPassword: Answer(422, field="password"),
    InvalidPostText: Answer(422, field="text"),
    PostTooLarge: Answer(413, "Text exceeds 1 MB size limit"),
    UserAlreadyExists: Answer(400, "User already exists"),
    InvalidCredentials: Answer(404, "Invalid email or password"),
    NotAuthenticated: Answer(401, headers=BEARER_CHALLENGE),
    PostNotFound: Answer(404, "Post not found"),
    PostQuotaExceeded: Answer(403, "Post quota exceeded"),
    RateLimited: Answer(429, headers_of=_retry_after),
    StorageUnavailable: _UNAVAILABLE,
    CacheUnavailable: _UNAVAILABLE,
}

# README-A's answers, fastapi-users' codes among them; everything else as in the canonical API.
COMPAT_ERRORS: ErrorTable = {
    **CANONICAL_ERRORS,
    InvalidPostText: Answer(422, field="Post_Text"),
    PostTooLarge: Answer(413, "Post_Text size exceeds 1 MB"),
    UserAlreadyExists: Answer(400, "REGISTER_USER_ALREADY_EXISTS"),
    InvalidCredentials: Answer(400, "LOGIN_BAD_CREDENTIALS"),
    # DeletePost succeeds also when the caller has no such post; nothing is deleted then.
    PostNotFound: Answer(200, "Success"),
}


def _answer_for(table: ErrorTable, error: DomainError | InfrastructureError) -> Answer:
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return Answer(500, "Internal Server Error")


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError | InfrastructureError)
    table: ErrorTable = request.scope.get(ERROR_TABLE_SCOPE_KEY, CANONICAL_ERRORS)
    answer = _answer_for(table, exc)
    if answer.status >= 500:
        # The cause names what failed underneath (the driver's error); the client is told neither.
        log.warning(
            "%s %s answered %s: %r caused by %r",
            request.method,
            request.url.path,
            answer.status,
            exc,
            exc.__cause__,
        )
    if answer.field is not None:
        detail: Any = [{"type": "value_error", "loc": ["body", answer.field], "msg": str(exc)}]
    else:
        detail = answer.detail if answer.detail is not None else str(exc)
    headers = answer.headers if answer.headers_of is None else {**answer.headers, **answer.headers_of(exc)}
    return JSON({"detail": detail}, answer.status, headers)


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


EXCEPTION_HANDLERS = {
    DomainError: domain_error,
    InfrastructureError: domain_error,
    RequestValidationError: validation_error,
    HTTPException: http_error,
    ClientDisconnect: client_disconnected,
    Exception: server_error,
}


class UseErrorTable:
    """Mount middleware: the routes below answer domain errors from `table`."""

    def __init__(self, app: ASGIApp, table: ErrorTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[ERROR_TABLE_SCOPE_KEY] = self.table
        await self.app(scope, receive, send)
