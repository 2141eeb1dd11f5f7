"""The requests most requests are (the cached get-posts, add-post), taken before Starlette's routing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.errors import Handler, handler_for

Endpoint = Callable[[Scope, Receive], Awaitable[Response]]


@attrs.frozen
class Direct:
    """Requests for `method` `path` without a query string: answered by `endpoint`, as `route`."""

    method: str
    path: str
    endpoint: Endpoint
    route: BaseRoute


class Shortcut:
    """Innermost middleware: a request of one of the `direct` routes without a query string goes
    straight to its endpoint, past the router, the API's mount and the three exception layers that
    each wrap every `send` on the way (1.4x the cached get-posts, `python -m bench.ab`; add-post,
    together with its INSERT compiled once: 727 -> 531 µs of the core). Everything else about the
    request is as if it had been routed: it is answered inside the body cap and admission, the route
    it would have matched is named in the scope (the metrics and the trace label it with the
    template), and its errors are answered by `handlers`, those of that route's mount. A query
    string, another method or another path takes the routed way."""

    def __init__(self, app: ASGIApp, direct: Iterable[Direct], handlers: Mapping[Any, Handler]) -> None:
        self.app = app
        self._direct = {(route.method, route.path): route for route in direct}
        self._handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self._direct.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if direct is None or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        scope["route"] = direct.route
        try:
            response = await direct.endpoint(scope, receive)
        except Exception as exc:
            handler = handler_for(self._handlers, exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)
