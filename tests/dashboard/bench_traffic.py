"""Per-request cost of the dashboard's traffic observer (`python -m tests.dashboard.bench_traffic`).

Builds real outcomes (a routed RequestContext with typical request headers, usage, cost)
and times `Traffic.observe` alone, then the whole `Observers.report` of a gateway.
"""

from __future__ import annotations

import sys
import time

from multidict import CIMultiDict

from polyroute.clock import FakeClock
from polyroute.config.schema import GatewayConfig
from polyroute.context import RequestContext
from polyroute.dashboard.traffic import HISTORY, Traffic
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Outcome, Usage

CONFIG = {
    "records": {"enabled": False},  # nothing written next to the working directory
    "models": [
        {"name": "a", "provider": "simulator", "profile": "instant"},
        {"name": "b", "provider": "simulator", "profile": "instant"},
    ],
    "routes": {"chat": {"strategy": "weighted", "targets": ["a", "b"]}},
}
HEADERS = CIMultiDict(
    {
        "Host": "127.0.0.1:4000",
        "User-Agent": "OpenAI/Python 1.50.0",
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "Content-Type": "application/json",
        "Authorization": "Bearer sk-bench",
        "X-Stainless-Lang": "python",
        "Content-Length": "120",
    }
)


def outcomes(gateway: Gateway, count: int) -> list[Outcome]:
    made = []
    for i in range(count):
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        ctx = RequestContext(
            request_id=f"req_{i}", kind=EndpointKind.CHAT, model="chat", body=body, headers=HEADERS
        )
        decision = gateway.router.decide(ctx)
        made.append(
            Outcome(
                ctx,
                decision,
                decision.deployment,
                ok=i % 50 != 0,
                status=200,
                latency=0.05 + (i % 97) / 1000,
                attempts=1,
                usage=Usage(12, 40),
                cost=0.00012,
            )
        )
    return made


def main(count: int = 50_000) -> None:
    gateway = Gateway.from_config(GatewayConfig.model_validate(CONFIG))
    traffic = Traffic(gateway.executor.clock)
    for outcome in outcomes(gateway, 1000):
        traffic.observe(outcome)  # warm up: buckets allocated
    best = float("inf")
    for _ in range(5):
        made = outcomes(gateway, count)  # fresh contexts: nothing cached from a last pass
        started = time.perf_counter()
        for outcome in made:
            traffic.observe(outcome)
        best = min(best, time.perf_counter() - started)
    print(f"Traffic.observe: {best / count * 1e6:.2f} us per outcome (best of 5 x {count})")
    # a snapshot with every one-second bucket of the last 5 minutes filled
    clock = FakeClock()
    full = Traffic(clock)
    for outcome in made[: HISTORY * 100]:
        full.observe(outcome)
        if outcome.request_id.endswith("00"):
            clock.advance(1.0)
    series = 1 + len(full.routes) + len(full.deployments)
    started = time.perf_counter()
    for _ in range(50):
        full._cache = None  # force a recompute
        full.snapshot()
    elapsed = (time.perf_counter() - started) / 50
    print(f"Traffic.snapshot: {elapsed * 1e3:.2f} ms for {series} series ({HISTORY} s filled)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
