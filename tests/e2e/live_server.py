"""A real hexpost server process (`hexpost migrate` + `hexpost serve`, uvicorn) on a free local port,
with SQLite and the in-process cache under a temporary directory, for the tests that need a socket:
a browser, a fuzzer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SECRET = "live-server-secret-that-is-at-least-32-bytes"
START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(directory: Path, port: int) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("HEXPOST_")}
    environment.update(
        HEXPOST_DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'hexpost.db'}",
        HEXPOST_CACHE_URL="memory://",
        HEXPOST_JWT_SECRET=SECRET,
        HEXPOST_VAR_DIR=str(directory),
        HEXPOST_HOST="127.0.0.1",
        HEXPOST_PORT=str(port),
        HEXPOST_LOG_LEVEL="WARNING",
    )
    return environment


def _hexpost(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", *args]


@contextmanager
def live_server(directory: Path) -> Iterator[str]:
    """Yields the base URL of a server that answers; stops it afterwards. The server runs in
    `directory`, so no developer's .env file reaches it."""
    port = free_port()
    environment = server_environment(directory, port)
    subprocess.run(_hexpost("migrate"), cwd=directory, env=environment, check=True, capture_output=True)
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        _hexpost("serve"), cwd=directory, env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base_url, directory / "server.log")
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hexpost serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/openapi.json", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"hexpost serve did not answer within {START_TIMEOUT_SECONDS}s:\n{log.read_text()}")
