"""Chat and legacy completion requests: validation, generation, JSON and SSE bodies.

Generation happens once, up front, as a list of pieces per choice; the JSON body, the SSE
events, the usage block and the cost header are all derived from the same pieces, which
is what keeps `completion_tokens` exactly equal to the content events of a stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from polyroute.providers.simulator.profiles import SimProfile
from polyroute.providers.simulator.text import (
    count_tokens,
    generate_pieces,
    is_mostly_cjk,
    prompt_words,
    rng_for,
    seed_digest,
)
from polyroute.providers.simulator.wire import DONE, SimRequestError, sse

MAX_N = 8


@dataclass(slots=True)
class TextChoice:
    index: int
    pieces: list[str]
    finish_reason: str


@dataclass(slots=True)
class TextResult:
    """Everything generated for one chat or completion request."""

    model: str
    choices: list[TextChoice]
    prompt_tokens: int
    include_usage: bool

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.pieces) for c in self.choices)

    @property
    def longest(self) -> int:
        return max((len(c.pieces) for c in self.choices), default=0)

    def usage(self) -> dict[str, int]:
        completion = self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }


def int_param(body: dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    """An optional integer parameter within [low, high], or a 400 naming it."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise SimRequestError(f"'{name}' must be an integer", param=name)
    if value < low or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        raise SimRequestError(f"'{name}' must be >= {low}{upper}, got {value}", param=name)
    return value


def model_param(body: dict[str, Any], default: str | None = None) -> str:
    """The requested model id (echoed back in the response), required unless defaulted."""
    model = body.get("model", default)
    if not isinstance(model, str) or not model:
        raise SimRequestError("you must provide a model parameter", param="model")
    return model


def flatten_messages(messages: object) -> str:
    """The prompt text of a chat request: every message's text content, one per line."""
    if not isinstance(messages, list) or not messages:
        raise SimRequestError("'messages' must be a non-empty array", param="messages")
    lines: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise SimRequestError(
                f"messages[{i}] must be an object with a 'role'", param=f"messages[{i}]"
            )
        content = message.get("content")
        if isinstance(content, str):
            lines.append(content)
        elif isinstance(content, list):
            lines.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        elif content is not None:
            raise SimRequestError(
                f"messages[{i}].content must be a string or an array of parts",
                param=f"messages[{i}].content",
            )
    return "\n".join(lines)


def _generate(
    profile: SimProfile,
    *,
    model: str,
    prompt: str,
    seed: int | None,
    n: int,
    max_tokens: int | None,
    first_index: int,
) -> list[TextChoice]:
    digest = seed_digest(profile.seed, seed, model, prompt)
    chinese = is_mostly_cjk(prompt)
    echo = () if chinese else prompt_words(prompt)
    choices = []
    for j in range(n):
        rng = rng_for(digest, j)
        wanted = max(1, round(profile.output_tokens.sample(rng)))
        count = wanted if max_tokens is None else min(wanted, max_tokens)
        pieces = generate_pieces(rng, count, tag=profile.name, chinese=chinese, echo=echo)
        finish = "length" if count < wanted else "stop"
        choices.append(TextChoice(first_index + j, pieces, finish))
    return choices


def _common(body: dict[str, Any], profile: SimProfile, prompt_tokens: int) -> tuple[int, int]:
    """(n, token limit) after checking n, max_tokens and the context window."""
    n = int_param(body, "n", 1, MAX_N) or 1
    limit = int_param(body, "max_completion_tokens", 1)
    if limit is None:
        limit = int_param(body, "max_tokens", 1)
    room = profile.context_window - prompt_tokens
    if room <= 0:
        raise SimRequestError(
            f"this model's maximum context length is {profile.context_window} tokens, "
            f"but the prompt has {prompt_tokens}",
            code="context_length_exceeded",
            param="messages",
        )
    return n, room if limit is None else min(limit, room)


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _seed(body: dict[str, Any]) -> int | None:
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise SimRequestError("'seed' must be an integer", param="seed")
    return seed


def build_chat(body: dict[str, Any], profile: SimProfile) -> TextResult:
    """Validate a chat request and generate its choices."""
    model = model_param(body)
    prompt = flatten_messages(body.get("messages"))
    prompt_tokens = count_tokens(prompt)
    n, limit = _common(body, profile, prompt_tokens)
    choices = _generate(
        profile, model=model, prompt=prompt, seed=_seed(body), n=n, max_tokens=limit, first_index=0
    )
    return TextResult(model, choices, prompt_tokens, _include_usage(body))


def build_completion(body: dict[str, Any], profile: SimProfile) -> TextResult:
    """Validate a legacy completion request (one or several prompts) and generate."""
    model = model_param(body)
    raw = body.get("prompt")
    prompts: list[str]
    if isinstance(raw, str):
        prompts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(p, str) for p in raw):
        prompts = raw
    elif isinstance(raw, list) and raw and all(isinstance(p, int) for p in raw):
        prompts = [" ".join(map(str, raw))]
    else:
        raise SimRequestError("'prompt' must be a string or an array of strings", param="prompt")
    prompt_tokens = sum(count_tokens(p) for p in prompts)
    n, limit = _common(body, profile, max(count_tokens(p) for p in prompts))
    seed = _seed(body)
    choices: list[TextChoice] = []
    for i, prompt in enumerate(prompts):
        choices += _generate(
            profile, model=model, prompt=prompt, seed=seed, n=n, max_tokens=limit, first_index=i * n
        )
    return TextResult(model, choices, prompt_tokens, _include_usage(body))


def chat_json(result: TextResult, response_id: str, created: int) -> bytes:
    return orjson.dumps(
        {
            "id": response_id,
            "object": "chat.completion",
            "created": created,
            "model": result.model,
            "choices": [
                {
                    "index": c.index,
                    "message": {"role": "assistant", "content": "".join(c.pieces)},
                    "logprobs": None,
                    "finish_reason": c.finish_reason,
                }
                for c in result.choices
            ],
            "usage": result.usage(),
        }
    )


def completion_json(result: TextResult, response_id: str, created: int) -> bytes:
    return orjson.dumps(
        {
            "id": response_id,
            "object": "text_completion",
            "created": created,
            "model": result.model,
            "choices": [
                {
                    "text": "".join(c.pieces),
                    "index": c.index,
                    "logprobs": None,
                    "finish_reason": c.finish_reason,
                }
                for c in result.choices
            ],
            "usage": result.usage(),
        }
    )


def _head(response_id: str, obj: str, created: int, model: str) -> bytes:
    """The JSON prefix shared by every chunk of one stream, up to the choice index."""
    return (
        b'data: {"id":'
        + orjson.dumps(response_id)
        + b',"object":"'
        + obj.encode()
        + b'","created":'
        + str(created).encode()
        + b',"model":'
        + orjson.dumps(model)
        + b',"choices":[{"index":'
    )


def stream_events(
    result: TextResult, response_id: str, created: int, *, chat: bool
) -> list[tuple[int, bytes]]:
    """The SSE events of a chat (`chat=True`) or completion stream, with token positions.

    Chat opens each choice with a role delta; then one event per generated piece; then a
    finish event per choice; then the usage event when asked for; then [DONE].
    """
    obj = "chat.completion.chunk" if chat else "text_completion"
    head = _head(response_id, obj, created, result.model)
    events: list[tuple[int, bytes]] = []
    if chat:
        for c in result.choices:
            events.append(
                (
                    0,
                    head + str(c.index).encode() + b',"delta":{"role":"assistant","content":""},'
                    b'"logprobs":null,"finish_reason":null}]}\n\n',
                )
            )
    open_piece = b',"delta":{"content":' if chat else b',"text":'
    close_piece = (
        b'},"logprobs":null,"finish_reason":null}]}\n\n'
        if chat
        else (b',"logprobs":null,"finish_reason":null}]}\n\n')
    )
    for position in range(result.longest):
        for c in result.choices:
            if position < len(c.pieces):
                data = (
                    head
                    + str(c.index).encode()
                    + open_piece
                    + orjson.dumps(c.pieces[position])
                    + close_piece
                )
                events.append((position, data))
    last = max(0, result.longest - 1)
    empty = b',"delta":{},' if chat else b',"text":"",'
    for c in result.choices:
        finish = orjson.dumps(c.finish_reason)
        tail = b'"logprobs":null,"finish_reason":' + finish + b"}]}\n\n"
        events.append((last, head + str(c.index).encode() + empty + tail))
    if result.include_usage:
        usage = {
            "id": response_id,
            "object": obj,
            "created": created,
            "model": result.model,
            "choices": [],
            "usage": result.usage(),
        }
        events.append((last, sse(usage)))
    events.append((last, DONE))
    return events
