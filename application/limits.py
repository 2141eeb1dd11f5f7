"""Rate limits and login throttling: how many events one key (a client address, an account, a user) may
cause in a sliding window, counted through the RateLimiter port."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs

from domain.errors import DomainError


@attrs.frozen
class Rate:
    """At most `amount` events in any `seconds`-second window."""

    amount: int
    seconds: int


# Every rate of a limit must allow an event; none at all: the limit is off.
Rates = tuple[Rate, ...]

# An address from which an account logged in within this long is the user's own (see LoginThrottle).
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600
_KNOWN = (Rate(1, KNOWN_ADDRESS_SECONDS),)


class RateLimited(DomainError):
    """Too many events of one kind from one key; `retry_after` whole seconds until one is allowed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


@attrs.frozen
class Room:
    """How many more events every rate allows now (the fewest), and in how many seconds the first
    exhausted one allows another (0 when none is)."""

    remaining: int
    retry_after: float


class RateLimiter(Protocol):
    """Counts events per kind and key. It never raises and never fails open: when a shared store is
    down, the adapter counts in the process instead."""

    async def hit(self, kind: str, rates: Rates, key: str) -> float | None:
        """Counts one event against every rate unless one is exhausted; then returns the seconds until
        it allows another (None: counted)."""
        ...

    async def room(self, kind: str, rates: Rates, key: str) -> Room: ...

    async def clear(self, kind: str, rates: Rates, key: str) -> None: ...


class RateLimit:
    """Events of one kind (registrations, refreshes, posts) per key: past any of `rates`, RateLimited.
    Every attempt counts, including ones that fail later."""

    def __init__(self, limiter: RateLimiter, kind: str, rates: Rates) -> None:
        self._limiter = limiter
        self._kind = kind
        self._rates = rates

    async def count(self, key: str) -> None:
        if not self._rates:
            return
        retry_after = await self._limiter.hit(self._kind, self._rates, key)
        if retry_after is not None:
            raise RateLimited("Too many requests, retry later", retry_after)


@attrs.frozen
class LoginLimits:
    """Failed logins allowed per account from one address, per account, and per address."""

    account_address: Rates = ()
    account: Rates = ()
    address: Rates = ()


class LoginThrottle:
    """Failed logins are counted per account and address, per account, and per address; past any
    limit an attempt is refused (RateLimited) before any password is checked, whether or not the
    account exists. A success clears its account-and-address count.

    No malicious lockout: the per-account limit does not apply from an address that logged in to that
    account within KNOWN_ADDRESS_SECONDS, so failures from elsewhere cannot lock the user out of the
    addresses they use. Attempts still being checked count as failures, so a burst of concurrent
    guesses cannot get past a limit within one process."""

    def __init__(self, limiter: RateLimiter, limits: LoginLimits) -> None:
        self._limiter = limiter
        self._limits = limits
        self._in_flight: Counter[tuple[str, str]] = Counter()

    async def attempt(self, account: str, address: str, verify: Callable[[], Awaitable[bool]]) -> bool:
        """Runs `verify` (the password check) unless a limit is reached, and counts a failure."""
        pair = f"{account} {address}"
        counted = [("login-account-address", self._limits.account_address, pair)]
        if self._limits.account and not await self._known(pair):
            counted.append(("login-account", self._limits.account, account))
        counted.append(("login-address", self._limits.address, address))
        counted = [(kind, rates, key) for kind, rates, key in counted if rates]

        for kind, rates, key in counted:
            room = await self._limiter.room(kind, rates, key)
            if room.remaining <= self._in_flight[(kind, key)]:
                raise RateLimited("Too many failed logins, retry later", room.retry_after)
        for kind, _rates, key in counted:
            self._in_flight[(kind, key)] += 1
        try:
            verified = await verify()
        finally:
            for kind, _rates, key in counted:
                self._in_flight[(kind, key)] -= 1
                if not self._in_flight[(kind, key)]:
                    del self._in_flight[(kind, key)]

        if verified:
            await self._succeeded(pair)
        else:
            for kind, rates, key in counted:
                await self._limiter.hit(kind, rates, key)
        return verified

    async def _known(self, pair: str) -> bool:
        return (await self._limiter.room("login-known", _KNOWN, pair)).remaining == 0

    async def _succeeded(self, pair: str) -> None:
        if self._limits.account_address:
            await self._limiter.clear("login-account-address", self._limits.account_address, pair)
        await self._limiter.hit("login-known", _KNOWN, pair)
