"""`/metrics`, and the ASGI middleware that counts every request by route template, method and status.

The middleware is pure ASGI and cheap: no Request object, the route template looked up by the
route object Starlette matched, and the metric children of each (route, method, status) resolved
once and kept. Logins and 429s are read from the answer's status, so that a new reason for a 429
(throttling, rate limits) is counted without touching this module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.prometheus import Metrics
from entrypoints.http.openapi import DocumentedRoute, Operation, Reply
from entrypoints.http.route_templates import UNMATCHED

METRICS_PATH = "/metrics"
# Methods outside this set are one label value: a client cannot grow the series by inventing them.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
TOO_MANY_REQUESTS = 429
# The status of each login route for each outcome; a 429 on a login route is "throttled".
LOGIN_OUTCOMES: Mapping[str, Mapping[int, str]] = {
    "/api/v1/users/login": {200: "success", 404: "failure"},
    "/auth/login": {200: "success", 400: "failure"},
}


class _Observation:
    """The children of one (route, method, status): counted without a label lookup."""

    __slots__ = ("duration", "extra", "requests")

    def __init__(self, metrics: Metrics, route: str, method: str, status: int) -> None:
        self.requests = metrics.requests.labels(route, method, str(status))
        self.duration = metrics.duration.labels(route, method)
        extra = []
        if status == TOO_MANY_REQUESTS:
            extra.append(metrics.rate_limited.labels(route))
        outcomes = LOGIN_OUTCOMES.get(route)
        if outcomes is not None:
            outcome = "throttled" if status == TOO_MANY_REQUESTS else outcomes.get(status)
            if outcome is not None:
                extra.append(metrics.logins.labels(outcome))
        self.extra = tuple(extra)


class HttpMetrics:
    """Outermost middleware: every answer is counted, the 413s and 500s of inner layers included
    (an exception with no answer started is counted as the 500 the server will send)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: Mapping[int, str]) -> None:
        self.app = app
        self._metrics = metrics
        self._templates = templates
        self._in_flight = metrics.in_flight
        self._observations: dict[tuple[str, str, int], _Observation] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_see(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self._in_flight.inc()
        try:
            await self.app(scope, receive, send_and_see)
        finally:
            self._in_flight.dec()
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = self._templates.get(id(scope.get("route")), UNMATCHED)
        method = scope["method"]
        if method not in METHODS:
            method = OTHER_METHOD
        key = (route, method, status)
        observation = self._observations.get(key)
        if observation is None:
            observation = self._observations[key] = _Observation(self._metrics, route, method, status)
        observation.requests.inc()
        observation.duration.observe(seconds)
        for child in observation.extra:
            child.inc()


def metrics_route(metrics: Metrics) -> BaseRoute:
    async def scrape(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return DocumentedRoute(METRICS_PATH, scrape, "GET", METRICS)


METRICS = Operation(
    "metrics",
    "Prometheus metrics: requests, latency, cache, database pool, logins, rate limits, process",
    ("operations",),
    {200: Reply("The Prometheus text exposition format (version 0.0.4).", str, media_type="text/plain")},
    description=(
        "Off or on a port of its own with `HEXPOST_METRICS`. Label values are route templates, "
        "methods, statuses and outcomes: never a user, an email, a token or a raw path."
    ),
)
