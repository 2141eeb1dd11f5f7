from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from application.ports import PasswordHasher
from domain.users import Password

# A login storm must not take the core the event loop runs on: where the two compete, the loop
# gets ~90% of it (Linux weights niceness 10 against 0 as 110 to 1024).
HASHING_NICENESS = 10


def _lower_priority() -> None:
    if hasattr(os, "nice"):
        # On Linux a thread is a task of its own: this lowers this thread only (never below 19).
        os.nice(HASHING_NICENESS)


class Argon2PasswordHasher(PasswordHasher):
    """argon2id in a small thread pool: the hashing releases the GIL, so the event loop keeps serving
    while at most `max_concurrency` hashes run, at a lower CPU priority, and the rest wait their turn."""

    def __init__(self, hasher: argon2.PasswordHasher, max_concurrency: int) -> None:
        self._hasher = hasher
        self._pool = ThreadPoolExecutor(
            max_concurrency, thread_name_prefix="argon2", initializer=_lower_priority
        )
        # Made once, at start-up, so that even the first unknown email costs one check, no more.
        self._dummy_hash = hasher.hash("a password no account has")

    async def hash(self, password: Password) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password.value)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        if password_hash is None:
            await loop.run_in_executor(self._pool, self._check, self._dummy_hash, password)
            return False
        return await loop.run_in_executor(self._pool, self._check, password_hash, password)

    def _check(self, password_hash: str, password: str) -> bool:
        # surrogatepass: a string that is not valid Unicode can never equal a registered password,
        # so it must fail the check rather than crash it.
        secret = password.encode("utf-8", "surrogatepass")
        try:
            return self._hasher.verify(password_hash, secret)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
