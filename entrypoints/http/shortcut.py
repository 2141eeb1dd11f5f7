"""The cached get-posts, which most requests are, taken before Starlette's routing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.errors import Handler, handler_for

Endpoint = Callable[[Scope], Awaitable[Response]]


class Shortcut:
    """Innermost middleware: a GET of `path` without a query string goes straight to `endpoint`,
    past the router, the API's mount and the three exception layers that each wrap every `send`
    on the way (1.4x the cached get-posts, `python -m bench.ab`). Everything else about
    the request is as if it had been routed: it is answered inside the body cap and admission, the
    route it would have matched is named in the scope (the metrics and the trace label it with the
    template), and its errors are answered by `handlers`, those of that route's mount. A query
    string, another method or another path takes the routed way."""

    def __init__(
        self,
        app: ASGIApp,
        path: str,
        endpoint: Endpoint,
        route: BaseRoute,
        handlers: Mapping[Any, Handler],
    ) -> None:
        self.app = app
        self._path = path
        self._endpoint = endpoint
        self._route = route
        self._handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = scope["type"] == "http" and scope["path"] == self._path and scope["method"] == "GET"
        if not taken or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route
        try:
            response = await self._endpoint(scope)
        except Exception as exc:
            handler = handler_for(self._handlers, exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)
