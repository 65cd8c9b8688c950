"""Finding server-sent events in a byte stream (the usage meter and the cache's assembler
both read upstream streams as they pass)."""

from __future__ import annotations

import re

_EVENT_END = re.compile(rb"\r?\n\r?\n")


def event_ends(data: bytes) -> list[int]:
    """Where each complete event in `data` ends (after its blank line).

    Streams are LF-delimited in practice: found by looking for single LFs, which
    bytes.find does with memchr (a two-byte pattern, or `in`, takes CPython's general
    search: 558 ns per 239-byte chunk compiled, against 246 ns this way). The regex (CRLF
    too) runs only when a CR is present: a pattern that may start with an optional CR is
    tried at every position (callgrind: a third of a streamed request's instructions).
    """
    if data.find(b"\r") >= 0:
        return [match.end() for match in _EVENT_END.finditer(data)]
    ends = []
    last = len(data) - 1
    at = data.find(b"\n")
    while at >= 0:
        if at < last and data[at + 1] == 10:  # a blank line: LF LF
            ends.append(at + 2)
            at = data.find(b"\n", at + 2)
        else:  # the end of one line of a multi-line event
            at = data.find(b"\n", at + 1)
    return ends
