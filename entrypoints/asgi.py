"""The ASGI application factory that server processes import (`uvicorn --factory`)."""

import os
import sys

from pydantic import ValidationError
from starlette.applications import Starlette

from entrypoints import tracing
from entrypoints.allocator import ALLOCATOR
from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings, configuration_error


def create() -> Starlette:
    try:
        settings = Settings()
    except ValidationError as exc:
        # One clear line instead of a traceback from deep inside the server's start-up.
        print(configuration_error(exc), file=sys.stderr)
        raise SystemExit(2) from None
    try:
        tracing.check(os.environ)
    except tracing.TracingConfigurationError as exc:
        print(f"hexpost: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    ALLOCATOR.reuse_blocks_of(settings.max_post_bytes)
    return create_app(Container(settings=settings))
