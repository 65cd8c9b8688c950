"""The request log: one JSON line per finished request with what routing knew, what it
decided (and how likely that choice was), and what came of it, for `polyroute replay`.

::

    observability:
      request_log: {path: logs/requests.jsonl, max_bytes: 104857600, backups: 5}

Lines are built on the request path (a small dict), then serialised and written in
batches by a task on the event loop every `flush_interval` (polyroute.observability.
writer): the request never waits for the disk; when the queue is full, lines are dropped
and counted
(``polyroute_request_log_dropped_total``). The file rotates by size to ``path.1`` ...
``path.N``; several workers append to the same file (``O_APPEND``: whole batches, never
interleaved lines) and rotate it under a lock file. Shutdown writes everything queued.

A request line::

    {"type": "request", "time": "...Z", "request_id": "req_...", "kind": "chat",
     "context": {"model": "auto", "token_estimate": 812, "max_tokens": 256,
                 "stream": false, "messages": 3, "prompt_hash": "9f86d081884c7d65",
                 "language": "en",
                 "tier": "pro", "team": "search", "user_hash": "..."},
     "decision": {"route": "auto", "path": ["auto", "chat"], "strategy": "weighted",
                  "chosen": "gpt-4o", "plan": ["gpt-4o", "llama"], "propensity": 0.75,
                  "signals": {...}},
     "outcome": {"deployment": "gpt-4o", "ok": true, "status": 200, "latency_ms": 812.4,
                 "attempts": 1, "cost": 0.00409, "prompt_tokens": 790,
                 "completion_tokens": 211}}

(optional fields appear only when set: the decision's ``experiment``/``arm``,
``ensemble``, ``degraded``, ``panic``; the outcome's ``ttft_ms``, ``cached_tokens``,
``images``, ``tokens_estimated``, ``error_type``/``error_code``, ``cache``)

and feedback, appended when it arrives (POST /v1/feedback)::

    {"type": "feedback", "time": "...Z", "request_id": "req_...", "score": 1.0,
     "label": null, "known": true}

The context holds what routing read and computed: `token_estimate`, `language` and
`sentiment` appear when a strategy or filter computed them (nothing is computed for the
log), `prompt_hash` is a hash of the body's messages/prompt/input (identical prompts,
identical hash, across workers and restarts), plus the caller's tier, team and tags, a
hash of the end user and the request's `metadata`.

`propensity` is the probability that routing chose `chosen` (the planned primary): the
product over the traversed routes of the probability each strategy reported (`weighted`
reports it), 1.0 for deterministic strategies, and null where a random strategy reported
none (replay then gives no counterfactual estimate from that line). The prompt is not
logged unless ``request_log.prompts: true`` (then the body's messages/prompt/input);
its hash always is, for de-duplication.

Feedback for ids this process logged is acknowledged (the observer answers, so the
feedback endpoint says 200); with several workers the request may have been served by
another one, so feedback for any well-formed request id is appended with
``"known": false`` (replay joins lines by id), without acknowledging it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson

from polyroute.formatting import iso_time
from polyroute.observability.logs import Redactor
from polyroute.observability.settings import RequestLogSettings
from polyroute.observability.writer import BackgroundWriter
from polyroute.outcomes import Feedback, Outcome
from polyroute.routing.decision import Decision

DETERMINISTIC = frozenset(
    {
        "single",
        "by_type",
        "rules",
        "content",
        "cheapest",
        "lowest_latency",
        "least_busy",
        "ensemble",
    }
)
"""Strategies whose choice is a function of the request and the live state: their
choice has probability 1 (a random strategy must report `propensity` itself)."""
REQUEST_ID = re.compile(r"^req_(?:[0-9a-f]{12})?[0-9a-f]{24}$")
"""Our request ids: a millisecond time and 96 random bits (before 2026-11-26: no time)."""
_PROMPT_FIELDS = ("messages", "prompt", "input")
_COMPUTED = (("token_estimate", "_tokens"), ("language", "_language"), ("sentiment", "_sentiment"))


def propensity(decision: Decision) -> float | None:
    """The probability of the decision's primary (see the module doc), or None."""
    value = 1.0
    for route in decision.path:
        signals = decision.signals.get(route)
        if signals is None:
            continue
        reported = signals.get("propensity")
        if isinstance(reported, (int, float)) and not isinstance(reported, bool):
            value *= float(reported)
        elif signals.get("strategy") not in DETERMINISTIC and "degraded" not in signals:
            return None
    return value


def _hash(text: str, size: int = 8) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=size).hexdigest()


def request_line(outcome: Outcome, prompts: bool = False) -> dict[str, Any]:
    """The request log's line for `outcome`."""
    ctx = outcome.ctx
    body = ctx.body
    decision = outcome.decision
    prompt = [body.get(name) for name in _PROMPT_FIELDS]
    context: dict[str, Any] = {
        "model": ctx.model if decision is not None else None,
        "stream": ctx.stream,
        "prompt_hash": hashlib.blake2b(orjson.dumps(prompt), digest_size=8).hexdigest(),
    }
    # what routing computed (cached on the context), never computed here for the log
    for feature, slot in _COMPUTED:
        value = getattr(ctx, slot, None)
        if value is not None:
            context[feature] = value
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(cap, int) and not isinstance(cap, bool):
        context["max_tokens"] = cap
    messages = body.get("messages")
    if isinstance(messages, list):
        context["messages"] = len(messages)
    caller = ctx.caller
    if caller.tier is not None:
        context["tier"] = caller.tier
    if caller.team is not None:
        context["team"] = caller.team
    if caller.tags:
        context["tags"] = sorted(caller.tags)
    user = ctx.user
    if user:
        context["user_hash"] = _hash(user, 6)
    metadata = ctx.metadata
    if metadata:
        context["metadata"] = metadata
    if prompts:
        context["request"] = {k: body[k] for k in _PROMPT_FIELDS if k in body}
    line: dict[str, Any] = {
        "type": "request",
        "time": iso_time(time.time_ns() / 1e9),
        "request_id": ctx.request_id,
        "kind": ctx.kind.value,
        "context": context,
        "decision": None if decision is None else _decision(decision),
        "outcome": _outcome(outcome),
    }
    return line


def _decision(decision: Decision) -> dict[str, Any]:
    plan = decision.plan
    data: dict[str, Any] = {
        "route": decision.route,
        "path": decision.path,
        "strategy": decision.strategy,
        "chosen": plan[0].name if plan else None,
        "plan": [d.name for d in plan],
        "propensity": propensity(decision),
        "signals": decision.signals,
    }
    if decision.arm is not None:
        data["experiment"], data["arm"] = decision.experiment, decision.arm
    if decision.fan_out is not None:
        data["ensemble"] = decision.fan_out.aggregator
    if decision.degraded:
        data["degraded"] = True
    if decision.panic:
        data["panic"] = True
    return data


def _outcome(outcome: Outcome) -> dict[str, Any]:
    """The outcome's figures; optional ones (ttft, errors, cache, images) only when set."""
    usage = outcome.usage
    deployment = outcome.deployment
    data: dict[str, Any] = {
        "deployment": deployment.name if deployment is not None else None,
        "ok": outcome.ok,
        "status": outcome.status,
        "latency_ms": round(outcome.latency * 1000, 3),
        "attempts": outcome.attempts,
        "cost": outcome.cost,
    }
    if usage is not None:
        data["prompt_tokens"] = usage.prompt_tokens
        data["completion_tokens"] = usage.completion_tokens
        if usage.cached_tokens:
            data["cached_tokens"] = usage.cached_tokens
        if usage.images:
            data["images"] = usage.images
        if usage.estimated:
            data["tokens_estimated"] = True
    if outcome.ttft is not None:
        data["ttft_ms"] = round(outcome.ttft * 1000, 3)
    if outcome.error_type is not None:
        data["error_type"], data["error_code"] = outcome.error_type, outcome.error_code
    cache = getattr(outcome, "cache", None)
    if cache is not None:
        data["cache"] = cache
    return data


class RotatingFile:
    """Appends to `path`, rotating to path.1..path.N past `max_bytes`; safe for several
    processes appending to the same path (O_APPEND writes, a lock file for rotation, and
    each process reopens the path when another one rotated it)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None

    def write(self, data: bytes) -> None:
        fd = self._open() if self._fd is None else self._maybe_rotate(self._fd, len(data))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def _reopen(self, fd: int) -> int:
        os.close(fd)
        return self._open()

    def _maybe_rotate(self, fd: int, incoming: int) -> int:
        mine = os.fstat(fd)
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return self._reopen(fd)
        if (on_disk.st_ino, on_disk.st_dev) != (mine.st_ino, mine.st_dev):
            return self._reopen(fd)  # another process rotated it
        if on_disk.st_size == 0 or on_disk.st_size + incoming <= self.max_bytes:
            return fd
        with self._lock():
            current = os.stat(self.path)
            same = (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)
            if same and current.st_size + incoming > self.max_bytes:
                self._shift()
        return self._reopen(fd)

    def _shift(self) -> None:
        path = str(self.path)
        if self.backups == 0:
            os.remove(path)
            return
        for index in range(self.backups - 1, 0, -1):
            with suppress(FileNotFoundError):
                os.replace(f"{path}.{index}", f"{path}.{index + 1}")
        os.replace(path, f"{path}.1")

    @contextmanager
    def _lock(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # not POSIX: one process per file is assumed
            yield
            return
        fd = os.open(f"{self.path}.lock", os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class RequestLog:
    """The outcome observer writing the request log (see the module doc)."""

    def __init__(
        self, path: Path, settings: RequestLogSettings, redact: Redactor | None = None
    ) -> None:
        self.path = path
        self.settings = settings
        self.prompts = settings.prompts
        self._file = RotatingFile(path, settings.max_bytes, settings.backups)
        self._redact = redact
        self.writer = BackgroundWriter(
            "polyroute-request-log",
            self._render,
            self._file.write,
            queue_size=settings.queue_size,
            interval=settings.flush_interval,
        )
        self._recent: set[str] = set()  # ids whose feedback is acknowledged
        self._order: deque[str] = deque()  # the same ids, oldest first, for eviction
        self._remember = settings.remember

    # -- the request path ------------------------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        if self.writer.put(request_line(outcome, self.prompts)) and self._remember:
            request_id = outcome.ctx.request_id
            self._recent.add(request_id)
            order = self._order
            order.append(request_id)
            if len(order) > self._remember:
                self._recent.discard(order.popleft())

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        known = feedback.request_id in self._recent
        if not known and not REQUEST_ID.match(feedback.request_id):
            return None
        self.writer.put(
            {
                "type": "feedback",
                "time": iso_time(time.time_ns() / 1e9),
                "request_id": feedback.request_id,
                "score": feedback.score,
                "label": feedback.label,
                "known": known,
            }
        )
        return {} if known else None

    # -- the writer thread -----------------------------------------------------------------

    def _render(self, lines: list[dict[str, Any]]) -> bytes:
        text = b"".join(
            orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE) for line in lines
        )
        if self._redact is not None and self.prompts:  # prompts may quote a key
            return self._redact(text.decode()).encode()
        return text

    @property
    def dropped(self) -> int:
        return self.writer.dropped

    @property
    def written(self) -> int:
        return self.writer.written

    def start(self) -> None:
        """Write from a task on the running loop (a file: quick buffered writes)."""
        self.writer.start_task()

    def flush(self, timeout: float = 5.0) -> bool:
        return self.writer.flush(timeout)

    async def aclose(self) -> None:
        """Write what is queued, then close the file."""
        await self.writer.aclose()
        self._file.close()
