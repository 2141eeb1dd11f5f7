"""One log line per request, and a request id on every response.

The line names method, path (never the query string: the compatibility API carries tokens in
`?token=`), status, duration, the authenticated user when there is one, and the request id. No
header, body or query value is ever logged.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.precedence import ShortFirst
from entrypoints.http.errors import Handler
from entrypoints.logs import access_log, request_id_var, trace_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode()
# A client's id is taken only when it is short and made of characters that are safe in logs and
# headers; anything else is replaced by a generated one.
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@+=/-]{1,128}")
_USER_ID_STATE = "user_id"
_MAX_LOGGED_PATH = 1024
# Probes poll these every few seconds; a successful probe is logged at DEBUG only.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})


def remember_user(scope: Scope, user_id: int) -> None:
    """Names the authenticated user in the request's log line."""
    scope.setdefault("state", {})[_USER_ID_STATE] = user_id


def request_ids() -> Callable[[], str]:
    """32 hex digits like a uuid4's, but a counter behind a random per-process prefix: unique,
    which is all a request id needs to be, for a tenth of the cost."""
    prefix = secrets.token_hex(8)
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):016x}"


def request_id(scope: Scope, generate: Callable[[], str]) -> str:
    for name, value in scope["headers"]:
        if name == _REQUEST_ID_HEADER_BYTES:
            if isinstance(value, bytes) and _SAFE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return generate()


def _logged_path(scope: Scope) -> str:
    # raw_path is the path as sent, still percent-encoded, and never includes the query string.
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        path = raw.decode("ascii", "backslashreplace")
    else:
        path = scope["path"].encode("unicode_escape").decode("ascii")
    return path if len(path) <= _MAX_LOGGED_PATH else path[:_MAX_LOGGED_PATH] + "..."


class RequestObserver(Protocol):
    def started(self) -> None: ...

    def finished(self, scope: Scope, status: int | None, seconds: float) -> None:
        """`status` None: the app ended without answering (the server answers 500)."""
        ...


class RequestLog:
    """Outermost ASGI middleware: it must see every response, the 500 and the body cap's 413
    included. It never reads or buffers bodies.

    It also answers what nothing inside answered, with `server_error` (in Starlette's
    `ServerErrorMiddleware`'s place: one layer less on every request). Once an answer has begun,
    an error can only be the server's to report, by closing the connection."""

    def __init__(
        self,
        app: ASGIApp,
        server_error: Handler,
        trace_id: Callable[[], str | None] | None = None,
        observer: RequestObserver | None = None,
        short_first: ShortFirst | None = None,
    ) -> None:
        self.app = app
        self._server_error = server_error
        self._new_id = request_ids()
        # Set only when tracing is on: the request's lines then name its trace.
        self._trace_id = trace_id
        # Told of every request too (the metrics), without a layer of its own.
        self._observer = observer
        # Long answers give way while other requests are under way: this is where those are counted.
        self._short_first = short_first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope, self._new_id)
        state: dict[str, Any] = scope.setdefault("state", {})
        status: int | None = None
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A copy: an answer's headers may be a constant (the busy answer's).
                headers = [*message.get("headers", ()), (_REQUEST_ID_HEADER_BYTES, rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        token = request_id_var.set(rid)
        trace_id = None if self._trace_id is None else self._trace_id()
        trace_token = None if trace_id is None else trace_id_var.set(trace_id)
        observer = self._observer
        if observer is not None:
            observer.started()
        short_first = self._short_first
        if short_first is not None:
            short_first.started()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status is not None:
                raise
            # The handler logs the traceback: the client has its answer, and the server need not
            # log it again.
            response = await self._server_error(Request(scope, receive), exc)
            await response(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self._log(scope, status, seconds, state.get(_USER_ID_STATE), rid, trace_id)
            if observer is not None:
                observer.finished(scope, status, seconds)
            if short_first is not None:
                short_first.finished()
            request_id_var.reset(token)
            if trace_token is not None:
                trace_id_var.reset(trace_token)

    @staticmethod
    def _log(
        scope: Scope, status: int | None, seconds: float, user_id: Any, rid: str, trace_id: str | None
    ) -> None:
        level = logging.DEBUG if status == 200 and scope["path"] in QUIET_PATHS else logging.INFO
        access_log.log(
            level,
            scope["method"],
            _logged_path(scope),
            status,
            round(seconds * 1000, 1),
            user_id,
            rid,
            trace_id,
        )


class LoggedStarlette(Starlette):
    """Starlette with `RequestLog` outside its whole middleware stack, answering what nothing else
    did with `server_error`, so that even a 500 carries the request id and is logged with its
    status.

    `tracing`, when set, wraps even the log (so that the request's span is current when its lines
    are written), and `trace_id` names that span's trace in them; `observer` (the metrics) and
    `short_first` are told of every request."""

    def __init__(
        self,
        *args: Any,
        server_error: Handler,
        tracing: Callable[[ASGIApp], ASGIApp] | None = None,
        trace_id: Callable[[], str | None] | None = None,
        observer: RequestObserver | None = None,
        short_first: ShortFirst | None = None,
        **kwargs: Any,
    ) -> None:
        self._server_error = server_error
        self._tracing = tracing
        self._trace_id = trace_id
        self._observer = observer
        self._short_first = short_first
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        # Starlette's own stack, but for its ServerErrorMiddleware, whose place RequestLog takes.
        inner = [*self.user_middleware, Middleware(ExceptionMiddleware, handlers=self.exception_handlers)]
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(inner):
            app = cls(app, *args, **kwargs)
        logged = RequestLog(app, self._server_error, self._trace_id, self._observer, self._short_first)
        return logged if self._tracing is None else self._tracing(logged)
