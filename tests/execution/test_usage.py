"""StreamUsage: reads the usage event wherever the upstream's chunks split it."""

from __future__ import annotations

import orjson

from polyroute.usage import StreamUsage

USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
DELTA = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}'
LAST = b'data: {"choices":[],"usage":' + orjson.dumps(USAGE) + b"}"


def stream(separator: bytes) -> bytes:
    return separator.join([DELTA, DELTA, LAST, b"data: [DONE]"]) + separator


def run(data: bytes, size: int, *, withhold: bool) -> tuple[bytes, StreamUsage]:
    meter = StreamUsage(withhold=withhold)
    out = b"".join(meter.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + meter.finish(), meter


def test_usage_event_found_and_withheld_at_any_split() -> None:
    for separator in (b"\n\n", b"\r\n\r\n"):
        data = stream(separator)
        for size in (1, 5, 17, 64, len(data)):
            out, meter = run(data, size, withhold=True)
            assert meter.usage is not None
            assert meter.usage.completion_tokens == 3
            assert b'"usage"' not in out
            assert out == separator.join([DELTA, DELTA, b"data: [DONE]"]) + separator


def test_without_withholding_bytes_pass_unchanged() -> None:
    data = stream(b"\n\n")
    for size in (3, 40, len(data)):
        out, meter = run(data, size, withhold=False)
        assert out == data
        assert meter.usage is not None
        assert meter.usage.prompt_tokens == 7


def test_usage_inside_a_content_chunk_is_read_but_kept() -> None:
    """Some upstreams put usage on the last content chunk: it is counted, never dropped."""
    event = b'data: {"choices":[{"delta":{"content":"x"}}],"usage":' + orjson.dumps(USAGE) + b"}"
    data = event + b"\n\ndata: [DONE]\n\n"
    out, meter = run(data, 8, withhold=True)
    assert out == data
    assert meter.usage is not None
    assert meter.usage.total_tokens == 10


def test_no_usage_counts_events_for_an_estimate() -> None:
    data = b"\n\n".join([DELTA, DELTA, DELTA, b"data: [DONE]"]) + b"\n\n"
    _, meter = run(data, 10, withhold=True)
    assert meter.usage is None
    assert meter.events == 4


def test_only_usage_only_events_are_cut_wherever_they_sit() -> None:
    """Events around a usage-only event, and a second one, pass byte for byte."""
    mixed = b'data: {"choices":[{"delta":{"content":"u"}}],"usage":' + orjson.dumps(USAGE) + b"}"
    events = [DELTA, LAST, DELTA, mixed, LAST, b"data: [DONE]"]
    data = b"\n\n".join(events) + b"\n\n"
    for size in (7, len(data)):
        out, meter = run(data, size, withhold=True)
        assert out == b"\n\n".join([DELTA, DELTA, mixed, b"data: [DONE]"]) + b"\n\n"
        assert meter.usage is not None
        assert meter.usage.total_tokens == 10
        assert meter.events == 6


def test_null_usage_in_every_chunk_passes_and_the_last_one_counts() -> None:
    # OpenAI's shape once include_usage is on: `"usage": null` in each content chunk
    spaced = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}], "usage": null}'
    compact = b'data: {"choices":[{"index":0,"delta":{"content":"b"}}],"usage":null}'
    data = b"\n\n".join([spaced, compact, LAST, b"data: [DONE]"]) + b"\n\n"
    for size in (1, 9, 50, len(data)):
        out, meter = run(data, size, withhold=True)
        assert out == b"\n\n".join([spaced, compact, b"data: [DONE]"]) + b"\n\n"
        assert meter.usage is not None
        assert meter.usage.prompt_tokens == 7
        assert meter.events == 4
