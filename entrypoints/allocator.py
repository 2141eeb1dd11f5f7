"""Memory that big responses and posts take goes back to the operating system once they are done."""

from __future__ import annotations

import ctypes
import sys

# glibc's mallopt(M_MMAP_THRESHOLD): blocks this large or larger get a mapping of their own, which
# is unmapped when freed. By default glibc raises the threshold (up to 32 MiB) each time such a
# block is freed, so after the first big list its 1 MiB posts would be carved from the heap, whose
# freed holes the process keeps: hundreds of megabytes after a few concurrent reads. Setting it
# fixes it where it starts.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def map_big_blocks_apart() -> None:
    """Only where the C library is glibc; elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
