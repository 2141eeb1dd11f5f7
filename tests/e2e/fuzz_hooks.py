"""Schemathesis hooks for tests/e2e/test_fuzz.py, loaded by its CLI through SCHEMATHESIS_HOOKS.

The routes that end sessions (logout, log out everywhere, end one session) authenticate each
request in a fresh session of a second account, so the shared token the other operations use stays
good for the whole run. (Changing the password or deleting the account needs the password, which
the fuzzer does not know.) With the rate limits on, the fuzzer's own failed logins may get this
address throttled; these routes are then sent a token that names no session (a 401).
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import schemathesis

BASE_URL = os.environ.get("HEXPOST_FUZZ_BASE_URL", "")
SHARED_TOKEN = os.environ.get("HEXPOST_FUZZ_TOKEN", "")
THROWAWAY = json.loads(os.environ.get("HEXPOST_FUZZ_THROWAWAY", "{}"))
ENDING_ROUTES = r"^/api/v1/users/(logout|me/sessions)"
NO_SESSION = "throttled.no.session"


def _bearer(case: Any, token: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@(
    schemathesis.auth(refresh_interval=None)
    .apply_to(method="POST", path_regex=ENDING_ROUTES)
    .apply_to(method="DELETE", path_regex=ENDING_ROUTES)
)
class FreshSession:
    def get(self, case: Any, ctx: Any) -> str:
        answer = httpx.post(f"{BASE_URL}/api/v1/users/login", json=THROWAWAY, timeout=30)
        if answer.status_code == 429:
            return NO_SESSION
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _bearer(case, data)


@(
    schemathesis.auth()
    .skip_for(method="POST", path_regex=ENDING_ROUTES)
    .skip_for(method="DELETE", path_regex=ENDING_ROUTES)
)
class SharedAccount:
    def get(self, case: Any, ctx: Any) -> str:
        return SHARED_TOKEN

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _bearer(case, data)
