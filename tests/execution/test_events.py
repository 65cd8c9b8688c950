"""Finding SSE event boundaries: the find-based path (LF) agrees with the CRLF-aware one."""

from __future__ import annotations

import re

import pytest

from polyroute.events import event_ends

REFERENCE = re.compile(rb"\r?\n\r?\n")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"data: {}",
        b"data: 1\n\n",
        b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n",
        b"data: 1\n\ndata: 2\n",  # the second event is not complete yet
        b"data: 1\n\n\n\ndata: 2\n\n",  # extra blank lines
        b"data: 1\n\n\ndata: 2\n\n",
        b"data: 1\r\n\r\ndata: 2\r\n\r\n",
        b"data: 1\r\n\ndata: 2\n\r\n",  # mixed line ends
        b"event: a\ndata: 1\ndata: 2\n\nevent: b\ndata: 3\n\n",  # multi-line events
        b"\n\ndata: 1\n\n",  # a blank line first
        b"\ndata: 1\n",  # single line ends only
        b"data: 1\n\n\n",  # a line end after the last event
        b"\n\n\n\n",
    ],
)
def test_event_ends_match_the_regex(data: bytes) -> None:
    assert event_ends(data) == [match.end() for match in REFERENCE.finditer(data)]
