"""Short requests go ahead of long answers in the process's event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ShortFirst:
    """A long answer (a big list, read, rendered and sent a slice at a time) lets the event loop
    serve other requests between two of its steps. When any other request of the process is under
    way it lets them have `turns` turns of the loop first, not one: a small request then meets a
    step of a long answer in one of its turns in `turns` rather than in every one. Alone, or beside
    other long answers only, a long answer takes one turn a step and runs at full speed.

    Why: a small list's request spans several turns (about seven on MySQL + Redis: the request,
    its task, the cache's lookup, Redis's reply, the answer), and with one turn a step each of them
    held a step of a big list's (a slice of a post encoded, a piece of an answer written, a row
    read: up to ~0.5 ms). With 16 concurrent reads of an 80 MiB list on MySQL + Redis, a small
    user's get-posts p99 at 8 connections beside them went from 1.85-1.9x its idle p99 to 1.3-1.5x,
    the big reads 5 % slower (`bench/biglist.py`'s scenario alone, three rounds each).

    It waits those turns for at most `max_wait_seconds`: under a heavy load a turn of the loop
    serves many requests and may take milliseconds, and 16 of them a step would starve a long
    answer (an 80 MiB list is some 21,000 steps).

    Whoever serves requests tells it when one starts and ends (`started`, `finished`: an addition
    each on every request); a long answer runs inside `long_answer`."""

    TURNS = 16
    MAX_WAIT_SECONDS = 0.004

    def __init__(
        self,
        turns: int = TURNS,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._turns = turns
        self._max_wait = max_wait_seconds
        self._clock = clock
        self._requests = 0
        self._long_answers = 0

    def started(self) -> None:
        self._requests += 1

    def finished(self) -> None:
        self._requests -= 1

    @property
    def requests_under_way(self) -> int:
        return self._requests

    def _others(self) -> bool:
        return self._requests > self._long_answers

    @contextmanager
    def long_answer(self) -> Iterator[None]:
        self._long_answers += 1
        try:
            yield
        finally:
            self._long_answers -= 1

    async def give_way(self) -> None:
        """Between two steps of a long answer."""
        await asyncio.sleep(0)
        if not self._others():
            return
        until = self._clock() + self._max_wait
        for _ in range(self._turns - 1):
            await asyncio.sleep(0)
            if self._clock() >= until:
                return
