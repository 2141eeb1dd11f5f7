"""`/metrics`, and what counts every request by route template, method and status.

Counting is cheap: no layer of its own (the request log reports each request), no Request object,
the route template looked up by the route object Starlette matched, and the metric children of each
(route, method, status) resolved once and kept. Logins and 429s are read from the answer's status,
so that a new reason for a 429 (throttling, rate limits) is counted without touching this module.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

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

    __slots__ = ("answered", "extra")

    def __init__(self, metrics: Metrics, route: str, method: str, status: int) -> None:
        self.answered = metrics.answers(route, method, status)
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
    """Counts every answer: told by the request log (`RequestLog`), the outermost layer, when a
    request starts and how it ended, so that it needs no layer of its own. A request that ended in
    an exception before any answer is counted as the 500 the server then sends."""

    def __init__(self, metrics: Metrics, templates: Mapping[int, str]) -> None:
        self._metrics = metrics
        self._templates = templates
        self._in_flight = metrics.in_flight
        self._observations: dict[tuple[str, str, int], _Observation] = {}

    def started(self) -> None:
        self._in_flight.value += 1

    def finished(self, scope: Scope, status: int | None, seconds: float) -> None:
        self._in_flight.value -= 1
        route = self._templates.get(id(scope.get("route")), UNMATCHED)
        method = scope["method"]
        if method not in METHODS:
            method = OTHER_METHOD
        key = (route, method, status or 500)
        observation = self._observations.get(key)
        if observation is None:
            observation = self._observations[key] = _Observation(self._metrics, *key)
        observation.answered(seconds)
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
