"""OpenTelemetry tracing, off unless the standard `OTEL_*` variables ask for it.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`; not `none`) or an OTLP endpoint
is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and
`OTEL_SDK_DISABLED` is not `true`. Everything else (sampler, headers, resource attributes,
service name) the SDK reads from its own variables. Off, nothing of OpenTelemetry is imported.

A request is one server span (the ASGI instrumentation, named by the route template), with a child
span per SQL statement (SQLAlchemy) and per Redis command (redis).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.route_templates import UNMATCHED

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

    from adapters.cache.redis import RedisClient

EXPORTERS = frozenset({"otlp", "console"})
DEFAULT_SERVICE_NAME = "hexpost"


class TracingConfigurationError(ValueError):
    pass


def requested(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(environ)
    if exporters:
        return exporters != ["none"]
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    value = environ.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def check(environ: Mapping[str, str]) -> None:
    """Raises TracingConfigurationError, naming the variable, for what this build cannot honour."""
    if not requested(environ):
        return
    unknown = [name for name in _exporter_names(environ) if name not in EXPORTERS]
    if unknown:
        raise TracingConfigurationError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not available; use otlp or console"
        )
    protocol = environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    )
    if protocol.strip() != "http/protobuf":
        raise TracingConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol} is not available; hexpost exports http/protobuf"
        )


class Tracing:
    """The tracer provider of this process and what it instruments."""

    def __init__(self, processors: list[SpanProcessor]) -> None:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider

        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
        self.provider: TracerProvider = TracerProvider(resource=resource)
        for processor in processors:
            self.provider.add_span_processor(processor)
        self._engines: list[AsyncEngine] = []
        self._clients: list[RedisClient] = []

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporters: list[SpanExporter] = []
        for name in _exporter_names(environ) or ["otlp"]:
            if name == "console":
                exporters.append(ConsoleSpanExporter())
            elif name == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporters.append(OTLPSpanExporter())
        return cls([BatchSpanProcessor(exporter) for exporter in exporters])

    def instrument_engine(self, engine: AsyncEngine) -> None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # The instrumentation declares SQLAlchemy < 2.1 and would refuse 2.1 without trying; the
        # engine events it uses are unchanged, and tests/integration/test_tracing.py holds it to that.
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine, tracer_provider=self.provider, skip_dep_check=True
        )
        self._engines.append(engine)

    def instrument_redis(self, client: RedisClient) -> None:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)
        self._clients.append(client)

    def middleware(self, app: ASGIApp, templates: Mapping[int, str]) -> ASGIApp:
        """The server span around `app`, named by the route template once the route is known."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(
            _NameByRoute(app, templates),
            tracer_provider=self.provider,
            exclude_spans=["receive", "send"],
        )

    @staticmethod
    def trace_id() -> str | None:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    def close(self) -> None:
        """Sends what is left and takes the instrumentation off again."""
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        for client in self._clients:
            RedisInstrumentor.uninstrument_client(client)
        if self._engines:
            SQLAlchemyInstrumentor().uninstrument()
        self.provider.shutdown()


class _NameByRoute:
    """Renames the request's server span `METHOD /route/{template}` and sets `http.route`, once
    Starlette has matched the route (the span starts before it is known)."""

    def __init__(self, app: ASGIApp, templates: Mapping[int, str]) -> None:
        self.app = app
        self._templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import trace

        span = trace.get_current_span()

        async def name_and_send(message: Message) -> None:
            # The instrumentation ends the span with the answer's last part: name it at the first.
            if message["type"] == "http.response.start":
                route = self._templates.get(id(scope.get("route")), UNMATCHED)
                span.set_attribute("http.route", route)
                span.update_name(f"{scope['method']} {route}")
            await send(message)

        await self.app(scope, receive, name_and_send)


def open_tracing() -> Tracing | None:
    """Tracing as the environment asks for it; raises TracingConfigurationError."""
    check(os.environ)
    return Tracing.from_environment(os.environ) if requested(os.environ) else None
