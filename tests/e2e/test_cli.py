"""The `hexpost` command as an operator meets it: installed console script, real processes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.hexpost_servers import HEXPOST, Server, free_port, running_server, server_environment

QUERY_SECRET = "query-token-value-that-must-never-be-logged"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """State under tmp_path, and the settings an operator might leave out (the JWT secret, the log
    level) left out."""
    return server_environment(tmp_path, secret=None, log_level="INFO")


@pytest.fixture
def run(tmp_path: Path, environment: dict[str, str]) -> Run:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HEXPOST), *args],
            cwd=tmp_path,  # no .env of the developer's
            env={**environment, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def test_help_names_both_commands(run: Run) -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "serve" in done.stdout
    assert "migrate" in done.stdout


def test_migrate_creates_the_tables_in_a_new_sqlite_database(run: Run, tmp_path: Path) -> None:
    database = tmp_path / "fresh" / "hexpost.db"
    done = run("migrate", HEXPOST_DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "posts", "alembic_version"} <= tables


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "HEXPOST_JWT_SECRET, a random secret of at least 32 bytes; it is not set"),
        ("short", "it has 5"),
    ],
)
def test_production_refuses_to_serve_without_a_strong_secret_in_one_line(
    run: Run, secret: str | None, reason: str
) -> None:
    env = {"HEXPOST_ENV": "production"}
    if secret is not None:
        env["HEXPOST_JWT_SECRET"] = secret
    done = run("serve", **env)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("hexpost: configuration error: ")
    assert reason in line


def test_the_asgi_factory_also_refuses_in_one_line(environment: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from entrypoints.asgi import create; create()"],
        cwd=tmp_path,
        env={**environment, "HEXPOST_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("hexpost: configuration error: HEXPOST_ENV=production needs HEXPOST_JWT_SECRET")


def test_a_bad_setting_is_named_in_one_line(run: Run) -> None:
    done = run("migrate", HEXPOST_PORT="99999", HEXPOST_LOG_LEVEL="chatty")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "HEXPOST_PORT: " in line
    assert "HEXPOST_LOG_LEVEL: " in line


@pytest.fixture
def server(environment: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts `hexpost serve` on the database `run` migrates; `settings` are HEXPOST_* names."""
    with ExitStack() as stack:

        def start(**settings: str) -> Server:
            own_port = {"HEXPOST_PORT": str(free_port())}
            return stack.enter_context(
                running_server(tmp_path, environment | own_port | settings, migrate=False)
            )

        yield start


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (http to our own server)
            return answer.status, answer.headers["X-Request-ID"]
    except urllib.error.HTTPError as error:
        return error.code, error.headers["X-Request-ID"]


@pytest.mark.slow
def test_served_requests_are_logged_by_hexpost_as_json_lines_without_query_strings(
    server: Callable[..., Server], run: Run
) -> None:
    assert run("migrate").returncode == 0
    running = server(HEXPOST_LOG_FORMAT="json")
    assert _get(f"{running.url}/readyz")[0] == 200
    status, request_id = _get(f"{running.url}/api/v1/posts/get-posts?token={QUERY_SECRET}")
    assert status == 401

    deadline = time.monotonic() + 5
    while request_id not in running.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = running.log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    [secret_note] = [line for line in lines if "HEXPOST_JWT_SECRET is not set" in line["message"]]
    assert str((running.log.parent / "var" / "jwt-secret").resolve()) in secret_note["message"]
    [access] = [line for line in lines if line.get("request_id") == request_id]
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/v1/posts/get-posts", 401)
    # uvicorn's own access log, which would print the query string, is off.
    assert QUERY_SECRET not in text


# --- The container image: no Docker engine here, so what can be checked without one ---------------

ROOT = Path(__file__).resolve().parents[2]


def _final_stage() -> list[str]:
    """The Dockerfile's last stage as instructions (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    last = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last:]


def _instruction(stage: list[str], name: str) -> str:
    [value] = [line.split(None, 1)[1] for line in stage if line.split(None, 1)[0].upper() == name][-1:]
    return value


def test_the_image_runs_the_console_script_as_a_non_root_user() -> None:
    stage = _final_stage()
    assert _instruction(stage, "USER").split(":")[0] not in ("root", "0")
    assert json.loads(_instruction(stage, "CMD")) == ["hexpost", "serve"]
    assert "HEXPOST_HOST=0.0.0.0" in _instruction(stage, "ENV")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "hexpost" in scripts


def test_the_image_build_copies_every_package_the_wheel_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {
        source
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    }
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in [*packages, "pyproject.toml", pyproject["project"]["readme"]]:
        assert needed in copied, needed
        assert f"!{needed}" in ignored, needed


@pytest.mark.slow
def test_the_image_healthcheck_command_passes_on_a_live_server_and_fails_without_one(
    server: Callable[..., Server], environment: dict[str, str]
) -> None:
    healthcheck = _instruction(_final_stage(), "HEALTHCHECK")
    command = healthcheck[healthcheck.index(" CMD ") + len(" CMD ") :]
    port = str(server(HEXPOST_DATABASE_URL="memory://").port)

    def check(port: str) -> int:
        return subprocess.run(
            ["/bin/sh", "-c", command],
            env={
                **environment,
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                "HEXPOST_PORT": port,
            },
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode

    assert check(port) == 0
    assert check("1") != 0
