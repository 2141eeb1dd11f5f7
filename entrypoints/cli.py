"""The `hexpost` command: serve the API, apply migrations."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from pydantic import ValidationError

from entrypoints import tracing
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings, configuration_error, jwt_secret

if TYPE_CHECKING:
    from alembic.config import Config

# The server, alembic and the backends are imported by the commands that use them, so that
# `hexpost --help` and configuration errors answer at once.

log = logging.getLogger("hexpost")

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    import migrations

    if ALEMBIC_INI.exists():
        config = Config(str(ALEMBIC_INI))
    else:
        # An installed wheel (the container image) has the migrations package but no alembic.ini.
        config = Config()
        config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["url"] = database_url
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    from alembic import command
    from sqlalchemy.engine import make_url

    from entrypoints.bootstrap import MEMORY_URL

    if settings.database_url == MEMORY_URL:
        print("memory:// keeps no schema: nothing to migrate")
        return
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), revision)


def announce_secret(settings: Settings) -> None:
    """Says once, at start, where a development server's signing secret comes from."""
    from entrypoints.bootstrap import MEMORY_URL

    if settings.jwt_secret is not None:
        return
    if settings.database_url == MEMORY_URL:
        log.info(
            "HEXPOST_JWT_SECRET is not set: tokens are signed with a secret that lives as long as the process"
        )
        return
    jwt_secret(settings)
    log.info(
        "HEXPOST_JWT_SECRET is not set: tokens are signed with the development secret kept in %s",
        settings.secret_file.resolve(),
    )


def serve(settings: Settings) -> None:
    from functools import partial

    import uvicorn

    from entrypoints.server import BoundedHttpToolsProtocol, ConnectionLimits, raise_descriptor_limit

    limits = attrs.evolve(
        ConnectionLimits.from_settings(settings),
        max_connections=raise_descriptor_limit(settings.max_connections),
    )

    if settings.workers > 1 and settings.metrics != "off":
        from entrypoints.metrics import prepare_multiprocess, serve_metrics_port

        # Before the workers start: they learn the directory from the environment.
        prepare_multiprocess(settings)
        if isinstance(settings.metrics, int):
            serve_metrics_port(settings)
    uvicorn.run(
        "entrypoints.asgi:create",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # uvloop; one process takes the connections that wait many at a time (entrypoints.loop).
        # Workers that share a listening socket keep libuv's one a turn, which spreads a burst of
        # connections over them rather than letting the first awake take a batch. uvicorn takes an
        # import string here for what makes the loop.
        loop="entrypoints.loop:BatchAcceptingLoop" if settings.workers == 1 else "uvloop",
        # httptools (uvicorn's fastest parser) with the connection bounds of entrypoints.server;
        # a partial, not a class made on the fly, so that it reaches spawned workers by pickle.
        http=partial(BoundedHttpToolsProtocol, limits=limits),  # type: ignore[arg-type]
        timeout_keep_alive=settings.keep_alive_seconds,
        # Requests are bounded by the admission middleware (entrypoints.http.admission) and
        # connections by the protocol: uvicorn's limit_concurrency counts idle keep-alive
        # connections as load and sheds at once, without a queue.
        limit_concurrency=None,
        proxy_headers=False,
        server_header=False,
        log_level=settings.log_level.lower(),
        # Logging is configured (configure_logging) and each request logged (RequestLog) by
        # hexpost: uvicorn's access log would print query strings, which carry tokens.
        log_config=None,
        access_log=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hexpost",
        description="A small, fast posts service. Configured by HEXPOST_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the HTTP API (HEXPOST_HOST, HEXPOST_PORT, HEXPOST_WORKERS)")
    commands.add_parser("migrate", help="apply the database migrations up to the newest")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(configuration_error(exc), file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "migrate":
        migrate(settings)
        return 0
    try:
        announce_secret(settings)
        # The OTEL_* variables, checked before any worker starts.
        tracing.check(os.environ)
    except (OSError, ValueError) as exc:
        # An unwritable var/ directory, a var/jwt-secret someone shortened, an exporter not shipped.
        print(f"hexpost: configuration error: {exc}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
