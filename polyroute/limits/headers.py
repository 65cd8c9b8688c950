"""What a client sees of the limits: OpenAI's ``x-ratelimit-*`` headers and the 429s.

Headers (on answers and on 429s), for the most constrained scope of each kind:
``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
``x-ratelimit-reset-requests`` (time until the quota is whole again, e.g. ``1s``,
``6m0s``, ``20ms``) and the same three for ``-tokens``.
"""

from __future__ import annotations

import math

from polyroute.errors import RateLimited
from polyroute.formatting import zero_padded
from polyroute.limits.checks import BUDGET, PARALLEL, REQUESTS, TOKENS, Check, Demand, Verdict


def duration(seconds: float) -> str:
    """OpenAI's way of writing a reset time: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds <= 0:
        return "0ms"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:  # to the millisecond, without a format spec (slow compiled)
        whole, millis = divmod(round(seconds * 1000), 1000)
        if not millis:
            return f"{whole}s"
        return f"{whole}.{zero_padded(millis, 3).rstrip('0')}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{rest}s"


_KINDS = (REQUESTS, TOKENS)  # the order of the headers: requests before tokens
_NAMES: tuple[tuple[str, str, str], ...] = tuple(
    (f"x-ratelimit-limit-{dim}", f"x-ratelimit-remaining-{dim}", f"x-ratelimit-reset-{dim}")
    for dim in _KINDS
)  # per kind of _KINDS
_LIMIT_TEXT: dict[float, str] = {}


def rate_headers(demand: Demand, verdict: Verdict) -> dict[str, str]:
    """``x-ratelimit-*`` for the scope with the least left of each kind (on a refusal, the
    refusing scope of its kind)."""
    remaining = verdict.remaining
    failed = verdict.failed
    chosen = [-1, -1]  # per kind of _KINDS: the index of its check, -1 for none
    for index, check in enumerate(demand.checks):
        dim = check.dim
        if dim == REQUESTS:
            kind = 0
        elif dim == TOKENS:
            kind = 1
        else:
            continue
        best = chosen[kind]
        if best < 0 or (best != failed and (index == failed or remaining[index] < remaining[best])):
            chosen[kind] = index
    headers: dict[str, str] = {}
    checks, reset = demand.checks, verdict.reset
    for kind in range(len(_KINDS)):  # not zip(..., strict=True): a generic call compiled
        index = chosen[kind]
        if index < 0:
            continue
        limit_name, remaining_name, reset_name = _NAMES[kind]
        left = remaining[index]
        limit = checks[index].limit
        text = _LIMIT_TEXT.get(limit)
        if text is None:
            if len(_LIMIT_TEXT) > 1024:  # limits come from config and keys: few
                _LIMIT_TEXT.clear()
            text = _LIMIT_TEXT[limit] = str(int(limit))
        headers[limit_name] = text
        headers[remaining_name] = str(int(left)) if left > 0 else "0"
        headers[reset_name] = duration(reset[index])
    return headers


def refusal(demand: Demand, verdict: Verdict) -> RateLimited:
    """The 429 for a refused demand: OpenAI's shape, `retry-after`, the rate headers."""
    index = verdict.failed if verdict.failed is not None else 0
    check = demand.checks[index]
    wait = verdict.retry_after
    headers = rate_headers(demand, verdict)
    finite = math.isfinite(wait)
    if finite:
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    retry_after = max(wait, 1.0) if finite else None
    where = _scope_label(check)
    if check.dim == BUDGET:
        return RateLimited(
            f"Budget exceeded for {where}: {check.limit - verdict.remaining[index]:.6g} of "
            f"{check.limit:g} USD spent {_period_label(check.period)}, and this request "
            f"is estimated at {check.amount:.6g} USD.",
            code="budget_exceeded",
            retry_after=retry_after,
            headers=headers,
            should_retry=False,
        )
    if check.dim == TOKENS and not finite:
        return RateLimited(
            f"Request too large for {where}: about {int(check.amount)} tokens (prompt plus "
            f"max_tokens or the expected answer) against a limit of {int(check.limit)} "
            "tokens per minute. Send less, or set a smaller max_tokens.",
            headers=headers,
            should_retry=False,
        )
    if check.dim == PARALLEL:
        message = (
            f"Too many requests in flight for {where}: the limit is {int(check.limit)} at "
            "once. Retry when one has finished."
        )
    else:
        unit = "requests" if check.dim == REQUESTS else "tokens"
        message = (
            f"Rate limit reached for {where}: {int(check.limit)} {unit} per minute, "
            f"{max(0, int(verdict.remaining[index]))} left. Try again in {duration(wait)}."
        )
    return RateLimited(message, retry_after=retry_after, headers=headers)


def _scope_label(check: Check) -> str:
    kind, _, name = check.scope.partition(":")
    if kind == "global":
        return "this gateway"
    return f"{kind} {name!r}"


def _period_label(period: str) -> str:
    return "in total" if period == "total" else f"this {period}"
