"""An HTTP client of the app, in process, over a container the test has wired."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from entrypoints.container import Container, close
from entrypoints.http.app import create_app


@asynccontextmanager
async def in_process_client(
    container: Container,
    *,
    raise_app_exceptions: bool = True,
    base_url: str = "http://hexpost.test",
    close_container: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """Closes the container afterwards unless `close_container` is False, for a container that
    something else owns and closes."""
    transport = httpx.ASGITransport(app=create_app(container), raise_app_exceptions=raise_app_exceptions)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http
    finally:
        if close_container:
            await close(container)
