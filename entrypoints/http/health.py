"""Probes: `/healthz` (the process answers) and `/readyz` (its database and cache answer too)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from entrypoints.http.errors import RETRY_AFTER_SECONDS
from entrypoints.http.openapi import RETRY_AFTER, DocumentedRoute, Operation, Reply
from entrypoints.http.responses import JSON

log = logging.getLogger(__name__)

Ping = Callable[[], Awaitable[None]]
OK = "ok"
LIVENESS_PATH = "/healthz"
UNAVAILABLE = "unavailable"


class Health:
    """`checks` name the dependencies; each ping raises (or outlasts `timeout_seconds`) when its
    dependency is unreachable. Pings run concurrently, so readiness answers within the timeout."""

    def __init__(self, checks: Mapping[str, Ping], timeout_seconds: float = 1.0) -> None:
        self._checks = dict(checks)
        self._timeout = timeout_seconds

    async def healthz(self, _request: Request) -> Response:
        return JSON({"status": OK})

    async def readyz(self, _request: Request) -> Response:
        names = list(self._checks)
        results = await asyncio.gather(*(self._check(name) for name in names))
        checks = dict(zip(names, results, strict=True))
        failing = [name for name, result in checks.items() if result != OK]
        if not failing:
            return JSON({"status": OK, "checks": checks})
        return JSON(
            {
                "status": UNAVAILABLE,
                "checks": checks,
                "detail": f"Not ready: {', '.join(failing)} unavailable",
            },
            503,
            {"Retry-After": RETRY_AFTER_SECONDS},
        )

    async def _check(self, name: str) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await self._checks[name]()
        except TimeoutError:
            log.warning("readiness: %s did not answer within %ss", name, self._timeout)
            return UNAVAILABLE
        except Exception as exc:
            log.warning("readiness: %s unavailable: %r", name, exc)
            return UNAVAILABLE
        return OK

    def routes(self) -> list[BaseRoute]:
        return [
            DocumentedRoute(LIVENESS_PATH, self.healthz, "GET", HEALTHZ),
            DocumentedRoute("/readyz", self.readyz, "GET", READYZ),
        ]


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "unavailable"]]
    detail: str | None = None


TAGS = ("probes",)
HEALTHZ = Operation("healthz", "Liveness: the process answers", TAGS, {200: Reply("Alive.", Liveness)})
READYZ = Operation(
    "readyz",
    "Readiness: the database and the cache answer too",
    TAGS,
    {
        200: Reply("Ready.", Readiness),
        503: Reply("A dependency is unavailable; `detail` names it.", Readiness, (RETRY_AFTER,)),
    },
)
