"""The C library's allocator, set for a process whose posts run to a megabyte or more: their blocks
are reused from the heap instead of mapped afresh each time, and what a burst of big answers left
free in the heap goes back to the operating system once the last of them is sent."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's ceiling for the mmap threshold on 64-bit systems.
MMAP_THRESHOLD_CEILING = 32 * 1024 * 1024


def mmap_threshold_for(max_post_bytes: int) -> int:
    """Blocks under it come from the heap. Serving one post makes and frees several blocks of about
    its size: the MySQL driver's receive buffer, which doubles up to twice the row's length, the
    row's bytes and text, the pieces of its JSON. A block mapped apart faults in every page when it
    is first touched, and on a virtual machine page faults are dear: with glibc's 128 KiB, 8
    readers of an 80 MiB list of 1 MiB posts on MySQL took 455,000 faults in 5 s, and each post held
    the event loop in steps of up to 4 ms (6.1 ms per post in all) against under 1 ms (1.7 ms) from
    the heap. Four times the largest post holds the driver's doubled buffer; glibc's own rule
    would instead raise the threshold to 32 MiB after the first big block is freed."""
    return min(MMAP_THRESHOLD_CEILING, max(4 * 1024 * 1024, 4 * max_post_bytes))


class Allocator:
    """glibc's malloc, where the process has it; elsewhere every call does nothing."""

    def __init__(self, libc: Any | None) -> None:
        self._libc = libc
        self._big_answers = 0

    @classmethod
    def of_this_process(cls) -> Allocator:
        if not sys.platform.startswith("linux"):
            return cls(None)
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            return cls(None)
        return cls(libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None)

    def reuse_blocks_of(self, max_post_bytes: int) -> bool:
        """Whether the C library took the settings."""
        if self._libc is None:
            return False
        threshold = mmap_threshold_for(max_post_bytes)
        # The heap keeps this much free at its top rather than shrinking between two posts and
        # faulting the pages in again for the next (glibc's own rule: twice the mmap threshold).
        return bool(
            self._libc.mallopt(M_MMAP_THRESHOLD, threshold)
            and self._libc.mallopt(M_TRIM_THRESHOLD, 2 * threshold)
        )

    @contextmanager
    def big_answer(self) -> Iterator[None]:
        """Around the sending of an answer too big to be held whole: when the last one of the process
        ends, the whole pages left free in the heap (holes between blocks that are still in use
        included) go back to the system. Without it the process kept what its big answers had touched:
        after 8 concurrent reads of an 80 MiB list, RSS 105-111 MB against 97-98 with it. It runs
        on the event loop, once per burst: giving back 280 MB took 16 ms here, a burst's tens of
        megabytes about a millisecond."""
        self._big_answers += 1
        try:
            yield
        finally:
            self._big_answers -= 1
            if not self._big_answers and self._libc is not None:
                self._libc.malloc_trim(0)


ALLOCATOR = Allocator.of_this_process()
