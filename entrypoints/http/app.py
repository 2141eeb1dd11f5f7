"""Builds the Starlette application from the container."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Mount
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from entrypoints.container import Container, close
from entrypoints.http import canonical as canonical_api
from entrypoints.http import compat as compat_api
from entrypoints.http.accounts import AccountsApi
from entrypoints.http.admission import Admission
from entrypoints.http.docs import with_docs
from entrypoints.http.errors import EDGE_HANDLERS, ErrorTable, exception_handlers_for, server_error
from entrypoints.http.health import LIVENESS_PATH, Health
from entrypoints.http.limits import BodyLimit
from entrypoints.http.metrics import METRICS_PATH, HttpMetrics, metrics_route
from entrypoints.http.request_log import REQUEST_ID_HEADER, LoggedStarlette
from entrypoints.http.route_templates import route_templates
from entrypoints.http.shortcut import Shortcut
from entrypoints.http.wire import Limits
from entrypoints.metrics import metrics_lifetime


def create_app(container: Container) -> Starlette:
    settings = container.settings()
    use_cases = container.use_cases()
    limits = Limits(settings.max_post_bytes, settings.cache_ttl_seconds)
    canonical = canonical_api.CanonicalApi(use_cases, limits, container.page_cursors())
    compat = compat_api.CompatApi(use_cases, limits)
    compat_errors = [answering(compat_api.error_table(limits))]

    health = Health(container.readiness())
    middleware = [Middleware(BodyLimit, max_bytes=settings.max_body_bytes)]
    if settings.max_in_flight is not None:
        # Inside the body cap, which answers an announced oversized body without taking a slot.
        # Liveness is never queued: a busy process is not a dead one. Readiness is, as it does I/O.
        # A scrape is not either: an overloaded process is when its metrics matter most.
        middleware.append(
            Middleware(
                Admission,
                max_in_flight=settings.max_in_flight,
                max_queued=settings.max_queued,
                unqueued_paths=(LIVENESS_PATH, METRICS_PATH),
            )
        )
    if settings.cors_origins:
        # Outside the body cap, so that a browser can read the 413 too.
        middleware.insert(0, cors(settings.cors_origins))
    if settings.forwarded_allow_ips:
        # The client address (rate limits, throttling) is the proxy's report only when the peer is a
        # listed proxy; anyone else's X-Forwarded-For is ignored.
        middleware.insert(0, Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips))
    infrastructure = container.infrastructure()
    sql = infrastructure.sql
    metrics = container.metrics()
    served_metrics: list[BaseRoute] = []
    if metrics is not None:
        if sql is not None:
            metrics.watch_pool(lambda: sql.engine.pool, lambda: sql.waiting)
        if settings.metrics == "on":
            served_metrics.append(metrics_route(metrics))
    tracing = container.tracing()
    if tracing is not None:
        if sql is not None:
            tracing.instrument_engine(sql.engine)
        if infrastructure.redis is not None:
            tracing.instrument_redis(infrastructure.redis)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # A streamed answer (a big list) runs in an anyio task group, and anyio imports its asyncio
        # backend when the first one is made: ~60 ms on the event loop, which fell on the first big
        # list's answer and on every request behind it.
        async with anyio.create_task_group():
            pass
        # What start-up made (modules, the app, its container) lives as long as the process: out of
        # the collector's sight, a full collection no longer walks it (~98,000 objects: 48-50 ms of
        # the event loop each, every request waiting meanwhile; ~0.5 ms without them).
        gc.collect()
        gc.freeze()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(close, container)
            if tracing is not None:
                stack.callback(tracing.close)
            if metrics is not None:
                await stack.enter_async_context(metrics_lifetime(settings, metrics))
            yield

    canonical_handlers = exception_handlers_for(canonical_api.error_table(limits))
    api = Mount(
        "/api/v1",
        routes=[*canonical.routes(), *AccountsApi(use_cases).routes()],
        middleware=[Middleware(ExceptionMiddleware, handlers=canonical_handlers)],
    )
    routes = with_docs(
        [
            *health.routes(),
            *served_metrics,
            api,
            # The compatibility API (README-A) at the old service's paths.
            Mount("/auth", routes=compat.auth_routes(), middleware=compat_errors),
            Mount("/posts", routes=compat.posts_routes(), middleware=compat_errors),
        ]
    )
    routes = hot_first(routes, api, canonical_api.GET_POSTS_PATH)
    # Innermost: inside the body cap and admission, as the routes they stand for.
    middleware.append(Middleware(Shortcut, direct=canonical.direct(api), handlers=canonical_handlers))
    templates = route_templates(routes)

    # The request log sits outside everything else but the trace (see LoggedStarlette).
    return LoggedStarlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EDGE_HANDLERS,
        server_error=server_error,
        lifespan=lifespan,
        tracing=None if tracing is None else lambda app: tracing.middleware(app, templates),
        trace_id=None if tracing is None else tracing.trace_id,
        observer=None if metrics is None else HttpMetrics(metrics, templates),
        short_first=container.short_first(),
    )


def hot_first(routes: list[BaseRoute], mount: Mount, path: str) -> list[BaseRoute]:
    """`routes` with `mount` first, and its route at `path` first within it. A router tries its
    routes in order, and most requests are for the cached list (+6 % on a cached get-posts,
    `python -m bench.ab`, before `Shortcut` took the whole list past the router; paging still
    comes this way). No two routes match one path, so nothing else changes; the OpenAPI
    document, made before, keeps the order the routes are declared in."""
    mount.routes.sort(key=lambda route: getattr(route, "path", None) != path)
    return [mount, *(route for route in routes if route is not mount)]


def cors(origins: list[str]) -> Middleware:
    """Browser clients on `origins` may call the API with a bearer token and read its headers."""
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "If-None-Match", REQUEST_ID_HEADER],
        expose_headers=["X-Cache", "ETag", "Link", REQUEST_ID_HEADER],
        max_age=600,
    )


def answering(table: ErrorTable) -> Middleware:
    """A mount's own exception handlers: the routes below it answer errors from `table`."""
    return Middleware(ExceptionMiddleware, handlers=exception_handlers_for(table))
