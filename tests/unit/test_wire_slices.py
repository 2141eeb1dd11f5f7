"""A page of posts is rendered in slices (`json_array_piece`): joined, they are exactly what encoding
the page whole gives, and a long text comes in several."""

from __future__ import annotations

import json

import pytest
from pydantic_core import to_json

from entrypoints.http.wire import SLICE_CHARS, json_array_piece

# Quotes, backslashes, control characters and characters outside the BMP on every slice's edge.
TRICKY = '"\\\n\t\x00é€😀'


def long_text(length: int) -> str:
    return "".join(TRICKY[i % len(TRICKY)] for i in range(length))


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["short"],
        ["one", long_text(SLICE_CHARS + 1), "three"],
        [long_text(3 * SLICE_CHARS + 7), long_text(SLICE_CHARS * 2)],
        [TRICKY * 3, long_text(SLICE_CHARS)],
    ],
)
@pytest.mark.parametrize(("first", "last"), [(True, True), (True, False), (False, True), (False, False)])
def test_the_slices_make_the_page_encoded_whole(texts: list[str], first: bool, last: bool) -> None:
    items = [
        {"id": number, "text": text, "created_at": "2026-11-30T00:00:00.000000Z"}
        for number, text in enumerate(texts)
    ]

    joined = b"".join(json_array_piece(items, first=first, last=last))

    whole = to_json(items)[1:-1]
    expected = (b"[" if first else b"," if items else b"") + whole + (b"]" if last else b"")
    assert joined == expected


def test_a_long_text_comes_in_slices_of_at_most_the_slice_size() -> None:
    text = long_text(5 * SLICE_CHARS)
    slices = list(json_array_piece([{"id": 1, "text": text}], first=True, last=True))

    assert len(slices) >= 5
    # An escaped character is at most 12 bytes (a surrogate pair in \\u form).
    assert max(len(piece) for piece in slices) <= 12 * SLICE_CHARS
    assert json.loads(b"".join(slices)) == [{"id": 1, "text": text}]
