"""The allocator's settings: blocks of a post's size come from the heap, and the heap's free pages go
back to the system when the last big answer of the process is sent, not before."""

from __future__ import annotations

import sys

import pytest

from entrypoints.allocator import (
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    MMAP_THRESHOLD_CEILING,
    Allocator,
    mmap_threshold_for,
)
from tests.unit.fakes import FakeLibc

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("max_post_bytes", "threshold"),
    [(1, 4 * MIB), (MIB, 4 * MIB), (3 * MIB, 12 * MIB), (16 * MIB - 1, MMAP_THRESHOLD_CEILING)],
)
def test_the_heap_holds_blocks_of_four_times_the_largest_post(max_post_bytes: int, threshold: int) -> None:
    assert mmap_threshold_for(max_post_bytes) == threshold


def test_the_settings_go_to_the_c_library() -> None:
    libc = FakeLibc()

    assert Allocator(libc).reuse_blocks_of(MIB)
    assert libc.settings == [(M_MMAP_THRESHOLD, 4 * MIB), (M_TRIM_THRESHOLD, 8 * MIB)]


def test_the_heap_is_given_back_once_when_the_last_big_answer_ends() -> None:
    libc = FakeLibc()
    allocator = Allocator(libc)

    with allocator.big_answer():
        with allocator.big_answer():
            pass
        assert libc.trims == []
    assert libc.trims == [0]

    with pytest.raises(ConnectionResetError), allocator.big_answer():
        raise ConnectionResetError
    assert libc.trims == [0, 0]


def test_without_glibc_nothing_is_set_or_given_back() -> None:
    allocator = Allocator(None)

    assert not allocator.reuse_blocks_of(MIB)
    with allocator.big_answer():
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc is Linux's C library")
def test_glibc_takes_the_settings_up_to_the_largest_posts() -> None:
    allocator = Allocator.of_this_process()

    assert allocator.reuse_blocks_of(16 * MIB - 1)
    assert allocator.reuse_blocks_of(MIB)
    with allocator.big_answer():
        pass
