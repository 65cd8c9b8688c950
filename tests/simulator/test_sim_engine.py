"""The engine without sockets: tokens, determinism, bodies, embeddings, PNGs, faults."""

from __future__ import annotations

import math
import random
import struct
import zlib
from typing import Any

import orjson
import pytest

from polyroute.kinds import EndpointKind
from polyroute.providers.simulator import (
    BUILTIN_PROFILES,
    FaultRates,
    FaultSchedule,
    SimEngine,
    SimProfile,
    count_tokens,
)
from polyroute.providers.simulator.embeddings import embed
from polyroute.providers.simulator.faults import draw_fault
from polyroute.providers.simulator.images import parse_size, render_png
from polyroute.providers.simulator.wire import Drop, Reply, StreamReply

INSTANT = BUILTIN_PROFILES["instant"]
CHAT = EndpointKind.CHAT


def _chat(content: str = "Tell me about rivers.", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def _json(outcome: object) -> Any:
    assert isinstance(outcome, Reply), outcome
    return orjson.loads(outcome.body)


def _events(outcome: object) -> list[Any]:
    assert isinstance(outcome, StreamReply), outcome
    blob = b"".join(data for _, data in outcome.sent_events())
    frames = [f.removeprefix(b"data: ") for f in blob.split(b"\n\n") if f]
    return [f.decode() if f == b"[DONE]" else orjson.loads(f) for f in frames]


def test_count_tokens_words_punctuation_and_cjk() -> None:
    """Words and punctuation marks are tokens; each CJK character is one token."""
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("你好世界") == 4
    assert count_tokens("GPU 很快") == 3
    assert count_tokens("") == 0


def test_chat_is_deterministic_per_seed_and_marked_simulated() -> None:
    """Same request and seed give the same text; the text says it is simulated."""
    engine = SimEngine(INSTANT)
    first = _json(engine.handle(CHAT, _chat(seed=7)))
    again = _json(engine.handle(CHAT, _chat(seed=7)))
    other = _json(engine.handle(CHAT, _chat(seed=8)))
    text = first["choices"][0]["message"]["content"]
    assert text.startswith("[simulated instant]")
    assert again["choices"][0]["message"]["content"] == text
    assert other["choices"][0]["message"]["content"] != text
    assert first["id"] != again["id"]


def test_chat_usage_counts_generated_pieces() -> None:
    """completion_tokens equals the pieces generated; prompt_tokens uses count_tokens."""
    body = _json(SimEngine(INSTANT).handle(CHAT, _chat("one two three")))
    usage = body["usage"]
    assert usage["prompt_tokens"] == 3
    assert usage["completion_tokens"] == INSTANT.output_tokens.median
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    """max_tokens below the natural length cuts the answer with finish_reason=length."""
    engine = SimEngine(INSTANT)
    full = _json(engine.handle(CHAT, _chat(seed=1)))
    cut = _json(engine.handle(CHAT, _chat(seed=1, max_completion_tokens=5)))
    assert cut["choices"][0]["finish_reason"] == "length"
    assert full["choices"][0]["finish_reason"] == "stop"
    assert cut["usage"]["completion_tokens"] == 5
    assert full["choices"][0]["message"]["content"].startswith(
        cut["choices"][0]["message"]["content"]
    )


def test_n_choices_differ_and_are_capped() -> None:
    """n gives distinct choices; n above the cap is a 400 naming `n`."""
    engine = SimEngine(INSTANT)
    body = _json(engine.handle(CHAT, _chat(n=3)))
    texts = [c["message"]["content"] for c in body["choices"]]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert len(set(texts)) == 3
    error = engine.handle(CHAT, _chat(n=50))
    assert isinstance(error, Reply)
    assert error.status == 400
    assert _json(error)["error"]["param"] == "n"


def test_chinese_prompt_gets_chinese_words() -> None:
    """A mostly-Chinese prompt is answered with Chinese words."""
    body = _json(SimEngine(INSTANT).handle(CHAT, _chat("请介绍一下路由网关的工作原理")))
    text = body["choices"][0]["message"]["content"]
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) > 10


def test_stream_events_shape_and_usage_consistency() -> None:
    """Stream: role delta, one event per token, finish, usage, [DONE]; usage matches."""
    outcome = SimEngine(INSTANT).handle(
        CHAT, _chat(stream=True, stream_options={"include_usage": True}, max_tokens=6)
    )
    events = _events(outcome)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [e for e in events[1:-3] if e["choices"][0]["delta"].get("content")]
    assert len(content) == 6
    finish = events[-3]["choices"][0]
    assert finish == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["completion_tokens"] == len(content)
    assert events[-1] == "[DONE]"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])


def test_stream_text_equals_non_stream_text() -> None:
    """Streaming and non-streaming answers of the same seeded request are the same text."""
    engine = SimEngine(INSTANT)
    text = _json(engine.handle(CHAT, _chat(seed=5)))["choices"][0]["message"]["content"]
    events = _events(engine.handle(CHAT, _chat(seed=5, stream=True)))
    streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert streamed == text


def test_completion_with_prompt_list_indexes_choices() -> None:
    """Legacy completions take a list of prompts; choices are indexed prompt-major."""
    body = {"model": "m", "prompt": ["alpha", "beta"], "n": 2}
    result = _json(SimEngine(INSTANT).handle(EndpointKind.COMPLETION, body))
    assert result["object"] == "text_completion"
    assert [c["index"] for c in result["choices"]] == [0, 1, 2, 3]
    assert result["usage"]["prompt_tokens"] == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0]"),
        (_chat(max_tokens=0), "max_tokens"),
        (_chat(seed="x"), "seed"),
    ],
)
def test_invalid_chat_requests_get_openai_400(body: dict[str, Any], param: str) -> None:
    """Malformed chat requests get a 400 invalid_request_error naming the parameter."""
    outcome = SimEngine(INSTANT).handle(CHAT, body)
    error = _json(outcome)["error"]
    assert isinstance(outcome, Reply)
    assert outcome.status == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_context_window_exceeded_is_400() -> None:
    """A prompt larger than the context window is refused with context_length_exceeded."""
    tiny = SimProfile(name="tiny", kinds=["chat"], context_window=5)
    outcome = SimEngine(tiny).handle(CHAT, _chat("one two three four five six seven"))
    assert _json(outcome)["error"]["code"] == "context_length_exceeded"


def test_unsupported_kind_is_404() -> None:
    """Asking an embedding-only profile for chat is a 404 that names the endpoint."""
    outcome = SimEngine(BUILTIN_PROFILES["embed"]).handle(CHAT, _chat())
    assert isinstance(outcome, Reply)
    assert outcome.status == 404
    assert "/v1/chat/completions" in _json(outcome)["error"]["message"]


def _cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_unit_length_and_similarity() -> None:
    """Vectors are unit length, and similar texts are closer than unrelated ones."""
    a = embed("The cat sat on the mat.", 256)
    b = embed("A cat was sitting on the mat", 256)
    c = embed("Quarterly revenue grew in the semiconductor sector", 256)
    assert math.isclose(math.sqrt(_cosine(a, a)), 1.0)
    assert _cosine(a, b) > 0.5 > _cosine(a, c)
    assert embed("The cat sat on the mat.", 256) == a


def test_embedding_request_dimensions_and_token_arrays() -> None:
    """`dimensions` sets the vector size; token-id inputs count one token per id."""
    body = {"model": "e", "input": [[1, 2, 3], [4, 5]], "dimensions": 32}
    result = _json(SimEngine(INSTANT).handle(EndpointKind.EMBEDDING, body))
    assert [len(d["embedding"]) for d in result["data"]] == [32, 32]
    assert result["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


def _png_chunks(png: bytes) -> dict[bytes, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    pos = 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + data
        pos += 12 + length
    return chunks


def test_png_is_valid_rgb_with_correct_size_and_crcs() -> None:
    """Rendered PNGs have valid chunks and CRCs, the asked size, and decompress fully."""
    png = render_png(b"seed", 40, 30)
    chunks = _png_chunks(png)
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, depth, color) == (40, 30, 8, 2)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 30 * (1 + 40 * 3)
    assert b"IEND" in chunks
    assert render_png(b"seed", 40, 30) == png
    assert render_png(b"other", 40, 30) != png


def test_image_sizes() -> None:
    """Sizes up to 1024x1024 parse; larger or malformed sizes do not."""
    assert parse_size(None) == (256, 256)
    assert parse_size("1024x1024") == (1024, 1024)
    assert parse_size("1792x1024") is None
    assert parse_size("big") is None


def test_schedule_is_fifo_and_beats_random_faults() -> None:
    """Scheduled faults are consumed in order before the profile's rates apply."""
    always = SimProfile(name="down", kinds=["chat"], faults=FaultRates(server_error=1.0))
    schedule = FaultSchedule()
    schedule.push("rate_limit")
    schedule.push("status", status=401)
    engine = SimEngine(always, schedule)
    statuses = []
    for _ in range(3):
        outcome = engine.handle(CHAT, _chat())
        assert isinstance(outcome, Reply)
        statuses.append(outcome.status)
    assert statuses == [429, 401, 500]
    assert engine.stats.faults == {"rate_limit": 1, "status": 1, "server_error": 1}


def test_schedule_rejects_unknown_kinds_and_bad_options() -> None:
    """Unknown fault kinds and a status fault without a status are errors."""
    schedule = FaultSchedule()
    with pytest.raises(ValueError, match="unknown fault"):
        schedule.push("explode")
    with pytest.raises(ValueError, match="status"):
        schedule.push("status")


def test_draw_fault_follows_rates() -> None:
    """Random faults appear at about their configured rate."""
    rates = FaultRates(rate_limit=0.2, reset=0.1)
    rng = random.Random(9)
    draws = [draw_fault(rates, rng) for _ in range(10_000)]
    kinds = [d.kind for d in draws if d is not None]
    assert kinds.count("rate_limit") == pytest.approx(2000, rel=0.1)
    assert kinds.count("reset") == pytest.approx(1000, rel=0.15)


def test_stream_cut_on_json_request_is_a_reset() -> None:
    """stream_cut on a non-streaming request drops the connection like a reset."""
    schedule = FaultSchedule()
    schedule.push("stream_cut")
    assert SimEngine(INSTANT, schedule).handle(CHAT, _chat()) == Drop("reset")


def test_slow_fault_overrides_latency() -> None:
    """A `slow` fault sets the delay from its ttft_ms."""
    schedule = FaultSchedule()
    schedule.push("slow", ttft_ms=1500)
    outcome = SimEngine(INSTANT, schedule).handle(CHAT, _chat())
    assert isinstance(outcome, Reply)
    assert outcome.delay == pytest.approx(1.5)


def test_cost_and_quality_headers() -> None:
    """Responses carry the request's cost and the profile's (category) quality."""
    outcome = SimEngine(INSTANT).handle(CHAT, _chat("a b", metadata={"category": "code"}))
    assert isinstance(outcome, Reply)
    expected = (2 * 1.0 + 16 * 2.0) / 1e6
    assert float(outcome.headers["x-sim-cost-usd"]) == pytest.approx(expected)
    assert outcome.headers["x-sim-quality"] == "0.5000"
    assert outcome.headers["x-sim-profile"] == "instant"
