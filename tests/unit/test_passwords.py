from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Literal

import argon2
import pytest

from adapters.passwords import Argon2PasswordHasher
from domain.users import Password


class CountingArgon2(argon2.PasswordHasher):
    """The real argon2 hasher, counting the verifications it performs."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=64, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


class BlockingArgon2(argon2.PasswordHasher):
    """Holds every hash at a gate and records how many were running at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=64, parallelism=1)
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            self.gate.wait(timeout=10)
            return super().hash(password, salt=salt)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def counting() -> CountingArgon2:
    return CountingArgon2()


@pytest.fixture
def hasher(counting: CountingArgon2) -> Iterator[Argon2PasswordHasher]:
    built = Argon2PasswordHasher(counting, max_concurrency=2)
    yield built
    built.close()


async def test_a_hash_is_argon2id_and_does_not_contain_the_password(hasher: Argon2PasswordHasher) -> None:
    hashed = await hasher.hash(Password("correct horse"))

    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed


async def test_the_same_password_hashes_differently_each_time(hasher: Argon2PasswordHasher) -> None:
    first = await hasher.hash(Password("correct horse"))
    second = await hasher.hash(Password("correct horse"))

    assert first != second


async def test_the_right_password_verifies(hasher: Argon2PasswordHasher) -> None:
    hashed = await hasher.hash(Password("correct horse"))

    assert await hasher.verify(hashed, "correct horse") is True


@pytest.mark.parametrize("attempt", ["correct hors", "correct horse ", "Correct horse", ""])
async def test_any_other_password_does_not_verify(hasher: Argon2PasswordHasher, attempt: str) -> None:
    hashed = await hasher.hash(Password("correct horse"))

    assert await hasher.verify(hashed, attempt) is False


async def test_a_non_ascii_password_round_trips(hasher: Argon2PasswordHasher) -> None:
    hashed = await hasher.hash(Password("pässwörd😀 ✓"))

    assert await hasher.verify(hashed, "pässwörd😀 ✓") is True


async def test_a_lone_surrogate_attempt_fails_instead_of_crashing(hasher: Argon2PasswordHasher) -> None:
    hashed = await hasher.hash(Password("correct horse"))

    assert await hasher.verify(hashed, "correct horse\udc00") is False


async def test_a_corrupt_stored_hash_fails_instead_of_crashing(hasher: Argon2PasswordHasher) -> None:
    assert await hasher.verify("not-a-hash", "correct horse") is False
    assert await hasher.verify("", "correct horse") is False


async def test_no_hash_still_costs_one_argon2_verification(
    hasher: Argon2PasswordHasher, counting: CountingArgon2
) -> None:
    hashed = await hasher.hash(Password("correct horse"))
    await hasher.verify(None, "warm up the dummy hash")
    counting.verifications = 0

    unknown_account = await hasher.verify(None, "correct horse")
    after_unknown = counting.verifications
    wrong_password = await hasher.verify(hashed, "wrong horse")

    assert (unknown_account, wrong_password) == (False, False)
    assert after_unknown == 1
    assert counting.verifications - after_unknown == 1


async def test_no_hash_never_verifies_even_the_dummys_password(hasher: Argon2PasswordHasher) -> None:
    assert await hasher.verify(None, "a password no account has") is False


async def test_hashing_runs_off_the_event_loop_with_bounded_concurrency() -> None:
    blocking = BlockingArgon2()
    hasher = Argon2PasswordHasher(blocking, max_concurrency=2)
    try:
        hashes = [asyncio.create_task(hasher.hash(Password(f"password-{n}"))) for n in range(6)]
        # The loop keeps running while the hashes are held: this coroutine gets to poll.
        for _ in range(1000):
            if blocking.running == 2:
                break
            await asyncio.sleep(0.005)
        assert blocking.running == 2
        assert not any(task.done() for task in hashes)

        blocking.gate.set()
        results = await asyncio.gather(*hashes)
    finally:
        blocking.gate.set()
        hasher.close()

    assert len(set(results)) == 6
    assert blocking.peak == 2


async def test_a_hash_made_with_other_parameters_needs_a_rehash_and_its_own_does_not() -> None:
    older = Argon2PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1), 1)
    current = Argon2PasswordHasher(argon2.PasswordHasher(time_cost=2, memory_cost=64, parallelism=1), 1)
    try:
        old_hash = await older.hash(Password("correct horse"))
        new_hash = await current.hash(Password("correct horse"))

        assert current.needs_rehash(old_hash) is True
        assert current.needs_rehash(new_hash) is False
        assert await current.verify(old_hash, "correct horse") is True
    finally:
        older.close()
        current.close()


class PriorityRecordingArgon2(argon2.PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=64, parallelism=1)
        self.niceness: list[int] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().hash(password, salt=salt)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no thread priorities on this platform")
async def test_hashing_threads_run_at_a_lower_priority_than_the_event_loop() -> None:
    recording = PriorityRecordingArgon2()
    hasher = Argon2PasswordHasher(recording, max_concurrency=2)
    # The dummy hash, made at start-up in the caller's thread.
    recording.niceness.clear()
    try:
        await asyncio.gather(*(hasher.hash(Password(f"password-{n}")) for n in range(4)))
    finally:
        hasher.close()
    loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert recording.niceness
    assert recording.niceness == [min(19, loop_niceness + 10)] * 4
