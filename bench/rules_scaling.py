"""Decision time of the `rules` strategy with 10 vs 1,000 rules (equality rules are indexed).

    .venv/bin/python bench/rules_scaling.py
Prints microseconds per decision (median of 5 runs of 20,000 decisions) for a request
whose rule is near the end of the list, and for one that matches no rule.
"""

from __future__ import annotations

import statistics
import time

from polyroute.config import parse_config
from polyroute.context import Caller, RequestContext
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.routing.router import Router

BODY = {"messages": [{"role": "user", "content": "hello"}]}


def build(count: int) -> Router:
    rules = "".join(
        f"      - {{name: t{i}, when: {{caller.team: team{i}}}, target: {'ab'[i % 2]}}}\n"
        for i in range(count)
    )
    text = (
        "models:\n  - {name: a, base_url: http://127.0.0.1:9/v1}\n"
        "  - {name: b, base_url: http://127.0.0.1:9/v1}\n"
        "routes:\n  r:\n    strategy: rules\n    default: a\n    rules:\n" + rules
    )
    return Gateway.from_config(parse_config(text)).router


def per_decision_us(router: Router, team: str, n: int = 20_000) -> float:
    caller = Caller(team=team)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            ctx = RequestContext(
                request_id="b", kind=EndpointKind.CHAT, model="r", body=BODY, caller=caller
            )
            router.decide(ctx)
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    print("rules | matching rule near the end | no rule matches (default)")
    results = {}
    for count in (10, 1000):
        router = build(count)
        hit = per_decision_us(router, f"team{count - 2}")
        miss = per_decision_us(router, "nobody")
        results[count] = hit
        print(f"{count:>5} | {hit:8.2f} us | {miss:8.2f} us")
    print(f"ratio 1000/10 (matching): {results[1000] / results[10]:.2f}")


if __name__ == "__main__":
    main()
