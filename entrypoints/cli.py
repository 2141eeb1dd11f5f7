"""The `hexpost` command: serve the API, apply migrations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from entrypoints.backends import MEMORY_URL
from entrypoints.settings import Settings

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = database_url
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    if settings.database_url == MEMORY_URL:
        print("memory:// keeps no schema: nothing to migrate")
        return
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), revision)


def serve(settings: Settings) -> None:
    uvicorn.run(
        "entrypoints.asgi:create",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        server_header=False,
        log_level=settings.log_level.lower(),
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
        for error in exc.errors(include_url=False):
            print(f"hexpost: configuration error: {error['msg']}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        migrate(settings)
    else:
        serve(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
