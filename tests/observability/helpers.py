"""Outcomes built from real decisions of an offline gateway, for observer unit tests."""

from __future__ import annotations

from typing import Any

from polyroute.config import parse_config
from polyroute.context import Caller, RequestContext
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Outcome, Usage

CONFIG = """
records: {enabled: false}
observability: {logs: {access_log: false}}
models:
  - name: alpha
    base_url: "http://127.0.0.1:9/v1"
    price: {input_per_mtok: 1, output_per_mtok: 2}
  - name: beta
    base_url: "http://127.0.0.1:9/v1"
    price: {input_per_mtok: 10, output_per_mtok: 20}
routes:
  chat: {strategy: weighted, targets: [{name: alpha, weight: 3}, {name: beta, weight: 1}]}
  split:
    strategy: ab
    arms: [{name: control, target: alpha}, {name: treatment, target: beta}]
  auto: {strategy: by_type, targets: {chat: chat}}
"""


def offline_gateway(text: str = CONFIG, **extra: Any) -> Gateway:
    return Gateway.from_config(parse_config(text, environ=extra or {}))


def outcome(
    gateway: Gateway,
    model: str = "chat",
    *,
    ok: bool = True,
    status: int = 200,
    latency: float = 0.2,
    ttft: float | None = None,
    deployment: str | None = None,
    attempts: int = 1,
    usage: Usage | None = None,
    user: str | None = None,
    routed: bool = True,
    error_type: str | None = None,
    text: str = "hello there",
    caller: Caller | None = None,
    request_id: str = "req_000000000000000000000001",
) -> Outcome:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if user:
        body["user"] = user
    ctx = RequestContext(
        request_id=request_id,
        kind=EndpointKind.CHAT,
        model=model,
        body=body,
        caller=caller or Caller(),
    )
    decision = gateway.router.decide(ctx) if routed else None
    answered = None
    if deployment is not None:
        answered = gateway.router.deployments[deployment]
    elif decision is not None:
        answered = decision.plan[0]
    used = usage if usage is not None else (Usage(100, 50) if ok else None)
    cost = None
    if used is not None and answered is not None:
        from polyroute.usage import cost_of

        cost = cost_of(answered, used)
    return Outcome(
        ctx,
        decision,
        answered,
        ok=ok,
        status=status,
        latency=latency,
        attempts=attempts,
        ttft=ttft,
        usage=used,
        cost=cost,
        error_type=error_type,
    )
