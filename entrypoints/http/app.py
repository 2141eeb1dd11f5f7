"""Builds the Starlette application from the container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from entrypoints.container import Container, close
from entrypoints.http.canonical import CanonicalApi
from entrypoints.http.errors import CANONICAL_ERRORS, EXCEPTION_HANDLERS, UseErrorTable
from entrypoints.http.limits import BodyLimit


def create_app(container: Container) -> Starlette:
    settings = container.settings()
    canonical = CanonicalApi(
        container.register_user(),
        container.log_in(),
        container.add_post(),
        container.get_posts(),
        container.delete_post(),
        container.tokens(),
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await close(container)

    return Starlette(
        routes=[
            Mount(
                "/api/v1",
                routes=canonical.routes(),
                middleware=[Middleware(UseErrorTable, table=CANONICAL_ERRORS)],
            ),
        ],
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_body_bytes)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
