"""Real `hexpost serve` processes, started by the tests that need what only a socket shows: a browser,
a fuzzer, raw HTTP/1.1, several processes on one database, the operator's command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import attrs
import httpx

from tests.conftest import LIMITS_OFF, SECRET

# The installed console script, as an operator runs it.
HEXPOST = Path(sys.executable).parent / "hexpost"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def server_environment(
    directory: Path,
    *,
    database_url: str | None = None,
    cache_url: str = "memory://",
    secret: str | None = SECRET,
    log_level: str = "WARNING",
    **overrides: str,
) -> dict[str, str]:
    """The caller's environment without its HEXPOST_ settings (a developer's must not leak in), and
    a server on a free port whose state lives under `directory` (SQLite unless `database_url` says
    otherwise), rate limits off. `secret=None` leaves the JWT secret unset; `overrides` are HEXPOST_*
    names."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("HEXPOST_")}
    environment.update(
        HEXPOST_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{directory / 'var' / 'hexpost.db'}",
        HEXPOST_CACHE_URL=cache_url,
        HEXPOST_VAR_DIR=str(directory / "var"),
        HEXPOST_HOST="127.0.0.1",
        HEXPOST_PORT=str(free_port()),
        HEXPOST_LOG_LEVEL=log_level,
    )
    environment.update({f"HEXPOST_{name.upper()}": value for name, value in LIMITS_OFF.items()})
    if secret is not None:
        environment["HEXPOST_JWT_SECRET"] = secret
    environment.update(overrides)
    return environment


@attrs.frozen
class Server:
    host: str
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def running_server(directory: Path, environment: dict[str, str], *, migrate: bool) -> Iterator[Server]:
    """A server that answers, run in `directory` so that no developer's .env file reaches it; stopped
    on leaving. `migrate` first brings an SQL database to the latest schema."""
    if migrate:
        migrated = subprocess.run(
            [str(HEXPOST), "migrate"],
            cwd=directory,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"hexpost migrate exited with {migrated.returncode}:\n{migrated.stdout}")
    port = int(environment["HEXPOST_PORT"])
    # Named by port, so that several servers can share a directory.
    server = Server(environment["HEXPOST_HOST"], port, directory / f"server-{port}.log")
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [str(HEXPOST), "serve"], cwd=directory, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_up(process, server)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def servers_sharing(
    directory: Path, database_url: str, cache_url: str, cache_key_prefix: str, *settings: dict[str, str]
) -> Iterator[list[str]]:
    """A server per entry of `settings` (HEXPOST_* names), all on one database (already migrated) and
    one cache; their base URLs."""
    with ExitStack() as stack:
        started = [
            stack.enter_context(
                running_server(
                    directory,
                    server_environment(
                        directory,
                        database_url=database_url,
                        cache_url=cache_url,
                        HEXPOST_CACHE_KEY_PREFIX=cache_key_prefix,
                        **each,
                    ),
                    migrate=False,
                )
            )
            for each in settings
        ]
        yield [server.url for server in started]


def _wait_until_up(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hexpost serve exited with {process.returncode}:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"hexpost serve did not answer within {START_TIMEOUT_SECONDS}s:\n{server.log.read_text()}"
    )
