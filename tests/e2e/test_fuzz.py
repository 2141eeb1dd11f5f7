"""Property-based fuzzing of every operation in /openapi.json against a real server process.

Schemathesis (its CLI, so all four phases run: examples, coverage, fuzzing, stateful) generates valid
and invalid requests from the document and runs all its checks on every answer: no 5xx, every
status, header and body documented and conforming, valid data accepted, invalid data rejected,
authentication enforced. A fixed seed and a bounded number of examples keep the run reproducible and
short. Authenticated as a registered user: a bearer header for the canonical API, the `token` query
parameter for the compatibility API; the account routes, which end sessions, as throwaway accounts
(tests/e2e/fuzz_hooks.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entrypoints.settings import Settings
from tests.hexpost_servers import running_server, server_environment

# Fixed for `make test`; set them to explore further (the report lands in the test's tmp_path).
SEED = int(os.environ.get("HEXPOST_FUZZ_SEED", "20261120"))
MAX_EXAMPLES = int(os.environ.get("HEXPOST_FUZZ_MAX_EXAMPLES", "50"))
TIMEOUT_SECONDS = 600
EMAIL = "fuzzer@example.com"
THROWAWAY = "throwaway@example.com"
PASSWORD = "correct horse battery"
METHODS = {"get", "put", "post", "delete", "patch"}
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


# The defaults of contract section 6, as a server that has not set them runs.
LIMITS_ON = {
    "HEXPOST_LOGIN_LIMITS": Settings.model_fields["login_limits"].get_default(),
    "HEXPOST_REGISTER_LIMITS": Settings.model_fields["register_limits"].get_default(),
    "HEXPOST_REFRESH_LIMITS": Settings.model_fields["refresh_limits"].get_default(),
    "HEXPOST_POST_LIMITS": Settings.model_fields["post_limits"].get_default(),
}


def schemathesis_config(token: str, limits: str) -> str:
    # Registering a taken address (400) and logging in to the compatibility API with credentials no
    # account has (400, fastapi-users' LOGIN_BAD_CREDENTIALS) are answers to well-formed requests;
    # with limits on, so is a 429 from the routes that are limited.
    limited = ', "429"' if limits == "on" else ""
    return f"""
seed = {SEED}

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

[parameters]
"query.token" = {json.dumps(token)}

[[operations]]
include-path-regex = "/register$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"{limited}]

[[operations]]
include-path = "/auth/login"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"{limited}]

[[operations]]
include-path-regex = "/(users/login|add-post|AddPost)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404"{limited}]

# A cursor is opaque: a string of its shape that the server did not make for this user is 422; a
# generated If-None-Match may be `*`, which is 304.
[[operations]]
include-path = "/api/v1/posts/get-posts"
checks.positive_data_acceptance.expected-statuses = ["2xx", "304", "422"]

# A well-formed password that is not the account's: 400 "Invalid password"; a wrong one counts as
# a failed login.
[[operations]]
include-path-regex = "/users/me(/password)?$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401"{limited}]

[[operations]]
include-path = "/api/v1/users/refresh"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401"{limited}]
"""


@pytest.fixture(scope="module", params=["off", "on"])
def limits(request: pytest.FixtureRequest) -> str:
    """Rate limits off (as benchmarks and most tests run), and on at their defaults."""
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, limits: str) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("fuzz-server")
    environment = server_environment(directory, **(LIMITS_ON if limits == "on" else {}))
    with running_server(directory, environment, migrate=True) as server:
        yield server.url


def test_every_operation_survives_fuzzing_with_all_checks(base_url: str, limits: str, tmp_path: Path) -> None:
    registered = httpx.post(f"{base_url}/api/v1/users/register", json={"email": EMAIL, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    token = registered.json()["access_token"]
    # The account the routes that end sessions sign in to, a fresh session each time (fuzz_hooks.py).
    throwaway = httpx.post(
        f"{base_url}/api/v1/users/register", json={"email": THROWAWAY, "password": PASSWORD}
    )
    assert throwaway.status_code == 201, throwaway.text
    document = httpx.get(f"{base_url}/openapi.json").json()
    operations = sum(1 for item in document["paths"].values() for method in item if method in METHODS)
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(token, limits))

    started = time.monotonic()
    run = subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli"),
            *("--config-file", str(config), "--no-color"),
            *("run", f"{base_url}/openapi.json", "--checks", "all"),
            *("--workers", "1", "--request-timeout", "30"),
        ],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
            "HEXPOST_FUZZ_BASE_URL": base_url,
            "HEXPOST_FUZZ_TOKEN": token,
            "HEXPOST_FUZZ_THROWAWAY": json.dumps({"email": THROWAWAY, "password": PASSWORD}),
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    report = f"{run.stdout}\n{run.stderr}\n(fuzzed for {time.monotonic() - started:.1f}s)"
    (tmp_path / "schemathesis.txt").write_text(report)
    assert run.returncode == 0, report
    assert re.search(rf"Operations:\s+{operations} selected / {operations} total", run.stdout), report
    assert re.search(rf"Tested:\s+{operations}\b", run.stdout), report
