"""The simulator's core: one request in, one outcome out, shared by server and provider.

`SimEngine.handle` picks a fault (scheduled first, then by the profile's rates), validates
the request like an OpenAI server would, generates the answer deterministically and
samples the latency. It does no I/O: the caller delivers the outcome (see `wire`).
"""

from __future__ import annotations

import base64
import random
import time
from typing import Any

import orjson

from polyroute.kinds import UPSTREAM_PATHS, EndpointKind
from polyroute.providers.simulator import embeddings, images
from polyroute.providers.simulator.faults import EARLY_FAULTS, Fault, FaultSchedule, draw_fault
from polyroute.providers.simulator.profiles import SimProfile
from polyroute.providers.simulator.stats import SimStats
from polyroute.providers.simulator.text import count_tokens, seed_digest
from polyroute.providers.simulator.textgen import (
    TextResult,
    build_chat,
    build_completion,
    chat_json,
    completion_json,
    int_param,
    model_param,
    stream_events,
)
from polyroute.providers.simulator.wire import (
    DONE,
    JSON_HEADERS,
    SSE_HEADERS,
    Drop,
    Outcome,
    Reply,
    SimRequestError,
    StreamReply,
    error_reply,
)

__all__ = ["Outcome", "SimEngine", "count_tokens"]

MAX_IMAGES = 4
FAST_TOKENS_PER_S = 1e6
"""At or above this speed, generation time is treated as zero (no sleeping at all)."""
_BROKEN_JSON = b'{"id": "sim-broken", "object": "chat.completion", "choices": [{"index": 0,'
_STATUS_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class SimEngine:
    """Turns requests into outcomes for one profile; owns the fault schedule and stats."""

    def __init__(
        self,
        profile: SimProfile,
        faults: FaultSchedule | None = None,
        *,
        stats: SimStats | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.profile = profile
        self.faults = faults if faults is not None else FaultSchedule()
        self.stats = stats if stats is not None else SimStats()
        self._rng = rng if rng is not None else random.Random()
        self._random_faults = any(rate > 0 for _, rate in profile.faults.weighted())
        self._kinds = frozenset(profile.kinds)

    # -- faults and timing -------------------------------------------------------------

    def next_fault(self) -> Fault | None:
        """The scheduled fault for this request, else a random one by the profile's rates."""
        fault = self.faults.pop()
        if fault is None and self._random_faults:
            fault = draw_fault(self.profile.faults, self._rng)
        return fault

    def _timing(self, fault: Fault | None) -> tuple[float, float]:
        """(ttft seconds, seconds per token) for one request."""
        if fault is not None and fault.kind == "slow":
            ttft = fault.opt_float("ttft_ms", 1000.0) / 1000
        else:
            ttft = self.profile.ttft_ms.sample(self._rng) / 1000
        speed = self.profile.tokens_per_s.sample(self._rng)
        interval = 0.0 if speed >= FAST_TOKENS_PER_S else 1.0 / max(speed, 1e-3)
        return ttft, interval

    def _early(self, fault: Fault) -> Outcome:
        kind, name = fault.kind, self.profile.name
        if kind in ("hang", "reset"):
            return Drop("hang" if kind == "hang" else "reset")
        if kind == "rate_limit":
            after = fault.opt_float("retry_after", self.profile.faults.retry_after)
            headers = {
                "retry-after": _num(after),
                "retry-after-ms": str(round(after * 1000)),
                "x-ratelimit-remaining-requests": "0",
            }
            return error_reply(
                429,
                f"[simulated {name}] rate limit reached; retry after {_num(after)}s",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if kind == "server_error":
            message = f"[simulated {name}] the server had an error processing the request"
            return error_reply(500, message, "server_error")
        if kind == "unavailable":
            message = f"[simulated {name}] the engine is currently overloaded"
            return error_reply(503, message, "server_error", code="overloaded")
        status = fault.opt_int("status", 500)
        default_type, default_code = _STATUS_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        headers = {}
        if "retry_after" in fault.opts:
            headers["retry-after"] = _num(fault.opt_float("retry_after", 1.0))
        return error_reply(
            status,
            str(fault.opts.get("message", f"[simulated {name}] injected status {status}")),
            str(fault.opts.get("type", default_type)),
            code=fault.opts.get("code", default_code),
            headers=headers,
        )

    def _late(self, fault: Fault, outcome: Outcome) -> Outcome:
        """Apply the faults that need the built answer: stream_cut and bad_json."""
        if fault.kind in ("stream_cut", "stall"):
            if not isinstance(outcome, StreamReply):
                # before any byte of a JSON body, a cut is a reset and a stall a hang
                return Drop("reset" if fault.kind == "stream_cut" else "hang")
            before_done = len(outcome.events) - 1
            default = max(1, before_done // 2)
            outcome.cut_after = min(fault.opt_int("after_chunks", default), before_done)
            outcome.stall = fault.kind == "stall"
        elif fault.kind == "bad_json":
            if isinstance(outcome, StreamReply):
                outcome.events = [(0, b"data: " + _BROKEN_JSON + b"\n\n"), (0, DONE)]
            elif isinstance(outcome, Reply):
                return Reply(200, dict(JSON_HEADERS), _BROKEN_JSON, outcome.delay)
        return outcome

    # -- requests ----------------------------------------------------------------------

    def handle(
        self,
        kind: EndpointKind,
        body: object,
        *,
        category: str | None = None,
        image_base_url: str = "http://simulator.invalid",
    ) -> Outcome:
        """The outcome for one request of `kind` with the parsed JSON `body`."""
        fault = self.next_fault()
        if fault is not None and fault.kind in EARLY_FAULTS:
            self.stats.faults[fault.kind] += 1
            return self._early(fault)
        try:
            if not isinstance(body, dict):
                raise SimRequestError("the request body must be a JSON object")
            if kind not in self._kinds:
                raise SimRequestError(
                    f"model {body.get('model')!r} (simulator profile {self.profile.name!r}) "
                    f"does not support /v1{UPSTREAM_PATHS[kind]}",
                    status=404,
                    param="model",
                    code="unsupported_endpoint",
                )
            outcome = self._build(kind, body, category, image_base_url, fault)
        except SimRequestError as exc:
            return exc.reply()
        if fault is not None and fault.kind != "slow":
            outcome = self._late(fault, outcome)
        if fault is not None:
            self.stats.faults[fault.kind] += 1
        return outcome

    def _build(
        self,
        kind: EndpointKind,
        body: dict[str, Any],
        category: str | None,
        image_base_url: str,
        fault: Fault | None,
    ) -> Outcome:
        if kind in (EndpointKind.CHAT, EndpointKind.COMPLETION):
            chat = kind == EndpointKind.CHAT
            result = (
                build_chat(body, self.profile) if chat else build_completion(body, self.profile)
            )
            ttft, interval = self._timing(fault)
            return self._text_outcome(
                result, body=body, chat=chat, category=category, ttft=ttft, interval=interval
            )
        if kind == EndpointKind.EMBEDDING:
            payload, usage_tokens = self._embeddings(body)
            cost = self.profile.price.cost(prompt_tokens=usage_tokens)
            ttft, _ = self._timing(fault)
            return Reply(200, self._headers(JSON_HEADERS, cost, body, category), payload, ttft)
        payload, count = self._images(body, image_base_url)
        cost = self.profile.price.cost(images=count)
        ttft, _ = self._timing(fault)
        return Reply(200, self._headers(JSON_HEADERS, cost, body, category), payload, ttft)

    def _headers(
        self, base: dict[str, str], cost: float, body: dict[str, Any], category: str | None
    ) -> dict[str, str]:
        headers = base | {"x-sim-profile": self.profile.name, "x-sim-cost-usd": f"{cost:.10f}"}
        if category is None:
            metadata = body.get("metadata")
            if isinstance(metadata, dict) and isinstance(metadata.get("category"), str):
                category = metadata["category"]
        quality = self.profile.quality_for(category)
        if quality is not None:
            headers["x-sim-quality"] = f"{quality:.4f}"
        return headers

    def _text_outcome(
        self,
        result: TextResult,
        *,
        body: dict[str, Any],
        chat: bool,
        category: str | None,
        ttft: float,
        interval: float,
    ) -> Outcome:
        prefix = "chatcmpl-sim-" if chat else "cmpl-sim-"
        response_id = f"{prefix}{self._rng.getrandbits(96):024x}"
        created = time.time_ns() // 1_000_000_000
        cost = self.profile.price.cost(result.prompt_tokens, result.completion_tokens)
        if body.get("stream") is True:
            headers = self._headers(SSE_HEADERS, cost, body, category)
            events = stream_events(result, response_id, created, chat=chat)
            return StreamReply(headers, events, ttft, interval)
        payload = (chat_json if chat else completion_json)(result, response_id, created)
        delay = ttft + result.longest * interval
        return Reply(200, self._headers(JSON_HEADERS, cost, body, category), payload, delay)

    def _embeddings(self, body: dict[str, Any]) -> tuple[bytes, int]:
        model = model_param(body)
        items = _embedding_inputs(body.get("input"))
        dim = int_param(body, "dimensions", 1, 8192) or self.profile.embedding_dim
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise SimRequestError(
                "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
            )
        data = []
        for i, (text, _) in enumerate(items):
            vector = embeddings.embed(text, dim, self.profile.seed)
            value: object = embeddings.to_base64(vector) if encoding == "base64" else vector
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(count for _, count in items)
        payload = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return orjson.dumps(payload), tokens

    def _images(self, body: dict[str, Any], base_url: str) -> tuple[bytes, int]:
        model = model_param(body, default=self.profile.name)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise SimRequestError("'prompt' must be a non-empty string", param="prompt")
        n = int_param(body, "n", 1, MAX_IMAGES) or 1
        size = images.parse_size(body.get("size"))
        if size is None:
            raise SimRequestError(
                f"'size' must be 'WxH' with sides up to {images.MAX_SIDE}, got "
                f"{body.get('size')!r}",
                param="size",
            )
        fmt = body.get("response_format") or "b64_json"
        if fmt not in ("b64_json", "url"):
            raise SimRequestError(
                "'response_format' must be 'b64_json' or 'url'", param="response_format"
            )
        data = []
        for i in range(n):
            digest = seed_digest(self.profile.seed, body.get("seed"), model, prompt, i).hex()
            key = images.image_key(digest, *size)
            item: dict[str, str] = {"revised_prompt": f"[simulated {self.profile.name}] {prompt}"}
            if fmt == "url":
                item["url"] = f"{base_url.rstrip('/')}/__sim/images/{key}.png"
            else:
                png = images.png_for_key(key)
                assert png is not None
                item["b64_json"] = base64.b64encode(png).decode("ascii")
            data.append(item)
        created = time.time_ns() // 1_000_000_000
        return orjson.dumps({"created": created, "data": data}), n


def _embedding_inputs(raw: object) -> list[tuple[str, int]]:
    """(text, token count) per input: strings, or token-id arrays rendered as text."""
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raw = None
    items: list[tuple[str, int]] = []
    for x in raw or ():
        if isinstance(x, str) and x:
            items.append((x, count_tokens(x)))
        elif isinstance(x, list) and x and all(isinstance(t, int) for t in x):
            items.append((embeddings.tokens_as_text(x), len(x)))
        else:
            items = []
            break
    if not items:
        raise SimRequestError(
            "'input' must be a non-empty string, array of strings, or token arrays",
            param="input",
        )
    return items
