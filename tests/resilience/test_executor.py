"""The retry loop on a virtual clock: order of attempts, backoff, Retry-After, deadline,
fallbacks by error class, budget and capacity (scripted upstreams, no sockets)."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from polyroute.config import parse_config
from polyroute.context import RequestContext
from polyroute.errors import Overloaded, UpstreamConnectionError, UpstreamError
from polyroute.execution.executor import Executor
from polyroute.execution.results import Completed
from polyroute.kinds import EndpointKind
from polyroute.routing.build import build_router
from polyroute.routing.router import Router
from polyroute.routing.runtime import Runtime
from polyroute.state.memory import MemoryBreakers, MemoryLiveStats, MemoryRetryBudget
from polyroute.testing import FakeClock, ScriptedProvider, error_reply

BODY = {"messages": [{"role": "user", "content": "hi"}]}


class Rig:
    """A router and executor over scripted deployments `a`, `b`, `big`, `cheap`."""

    def __init__(
        self, scripts: Mapping[str, ScriptedProvider], routes: str, resilience: str = ""
    ) -> None:
        names = ["a", "b", "big", "cheap"]
        models = "\n".join(f"  - {{name: {n}, base_url: http://127.0.0.1:9/v1}}" for n in names)
        text = f"models:\n{models}\nroutes:\n{routes}\n{resilience}"
        config = parse_config(text)
        self.clock = FakeClock()
        self.providers = {n: scripts.get(n, ScriptedProvider()) for n in names}
        self.runtime = Runtime(
            health=MemoryBreakers(config.resilience.breaker, self.clock),
            stats=MemoryLiveStats(config.stats, self.clock),
            clock=self.clock,
        )
        self.router: Router = build_router(config, self.runtime)
        self.executor = Executor(
            self.providers,
            resilience=config.resilience,
            runtime=self.runtime,
            budget=MemoryRetryBudget(config.resilience.retry_budget, self.clock),
            rng=random.Random(7),
        )

    async def call(self, model: str) -> Completed:
        ctx = RequestContext(request_id="t", kind=EndpointKind.CHAT, model=model, body=dict(BODY))
        return await self.executor.complete(ctx, self.router.decide(ctx), ctx.body)

    def counts(self) -> dict[str, int]:
        return {name: len(p.requests) for name, p in self.providers.items() if p.requests}


ORDERED = "  ab: {strategy: weighted, targets: [{name: a, weight: 1000000000}, b]}\n"
ONLY_A = "  only-a: {strategy: single, target: a}\n"


async def test_429_moves_on_without_sleeping_and_cools_down() -> None:
    """A1: a 429 on the primary goes straight to the next deployment; while the primary
    cools down for its Retry-After, later requests skip it."""
    rig = Rig({"a": ScriptedProvider([error_reply(429, **{"retry-after": "2"})])}, ORDERED)
    done = await rig.call("ab")
    assert (done.deployment.name, done.attempts) == ("b", 2)
    assert rig.clock.sleeps == []
    await rig.call("ab")
    assert rig.counts() == {"a": 1, "b": 2}
    rig.clock.advance(2.0)
    assert (await rig.call("ab")).deployment.name == "a"


async def test_5xx_falls_back_to_another_deployment_first() -> None:
    """A3: one 500 then another deployment: two attempts, no backoff sleep."""
    rig = Rig({"a": ScriptedProvider([error_reply(500)])}, ORDERED)
    done = await rig.call("ab")
    assert (done.deployment.name, done.attempts) == ("b", 2)
    assert rig.clock.sleeps == []


async def test_same_deployment_retries_with_full_jitter_backoff() -> None:
    """Alone, a deployment is retried after backoffs within [0, base x 2^n]."""
    rig = Rig({"a": ScriptedProvider([error_reply(503), error_reply(502)])}, ONLY_A)
    done = await rig.call("only-a")
    assert done.attempts == 3
    assert len(rig.clock.sleeps) == 2
    assert 0 <= rig.clock.sleeps[0] <= 0.025
    assert 0 <= rig.clock.sleeps[1] <= 0.05


async def test_retries_stop_at_max_retries() -> None:
    """A4: a deployment that keeps failing gets 1 + max_retries attempts, then the error."""
    rig = Rig({"a": ScriptedProvider(default=error_reply(500))}, ONLY_A)
    with pytest.raises(UpstreamError) as info:
        await rig.call("only-a")
    assert info.value.status == 502
    assert info.value.headers["x-polyroute-attempts"] == "3"
    assert info.value.should_retry is False


async def test_retry_after_is_honoured_when_alone() -> None:
    """With no other deployment, a 429's Retry-After is waited out (on the clock)."""
    rig = Rig({"a": ScriptedProvider([error_reply(429, **{"retry-after": "3"})])}, ONLY_A)
    done = await rig.call("only-a")
    assert done.attempts == 2
    assert rig.clock.sleeps == [3.0]


@pytest.mark.parametrize("retry_after", ["100", "5"])
async def test_retry_after_beyond_cap_or_deadline_is_not_waited(retry_after: str) -> None:
    """A2: a Retry-After over the cap (60 s), or past the deadline, ends the request now."""
    routes = "  only-a: {strategy: single, target: a, deadline: 4}\n"
    rig = Rig({"a": ScriptedProvider([error_reply(429, **{"retry-after": retry_after})])}, routes)
    with pytest.raises(UpstreamError) as info:
        await rig.call("only-a")
    assert info.value.status == 429
    assert info.value.headers["retry-after"] == retry_after
    assert rig.clock.sleeps == []


async def test_client_errors_are_not_retried() -> None:
    """A5: an upstream 400 is returned after one attempt, even with others available."""
    rig = Rig({"a": ScriptedProvider([error_reply(400)])}, ORDERED)
    with pytest.raises(UpstreamError) as info:
        await rig.call("ab")
    assert info.value.status == 400
    assert rig.counts() == {"a": 1}


async def test_upstream_401_falls_back() -> None:
    """A5: our credential refused on the primary: the next deployment answers."""
    rig = Rig({"a": ScriptedProvider([error_reply(401)])}, ORDERED)
    assert (await rig.call("ab")).deployment.name == "b"


async def test_context_window_error_goes_to_its_fallback() -> None:
    """A6: context_length_exceeded goes to fallbacks_on.context_window, not to retries."""
    routes = (
        "  r:\n    strategy: single\n    target: a\n"
        "    fallbacks_on: {context_window: [big]}\n    fallbacks: [cheap]\n"
    )
    script = ScriptedProvider([error_reply(400, code="context_length_exceeded")])
    rig = Rig({"a": script}, routes)
    done = await rig.call("r")
    assert (done.deployment.name, done.attempts) == ("big", 2)
    assert rig.counts() == {"a": 1, "big": 1}


async def test_general_fallbacks_come_after_the_plan() -> None:
    """Route fallbacks are tried after the strategy's own targets and do not use up
    max_retries."""
    routes = (
        "  r:\n    strategy: weighted\n    targets: [{name: a, weight: 1000000000}, b]\n"
        "    fallbacks: [cheap]\n    max_retries: 1\n"
    )
    failing = error_reply(500)
    rig = Rig({"a": ScriptedProvider([failing]), "b": ScriptedProvider([failing])}, routes)
    done = await rig.call("r")
    assert (done.deployment.name, done.attempts) == ("cheap", 3)


async def test_exhausted_retry_budget_returns_the_error() -> None:
    """With the retry budget spent, the first failure is returned, marked not to retry."""
    budget = "resilience:\n  retry_budget: {ratio: 0, min_per_second: 0}\n"
    rig = Rig({"a": ScriptedProvider([error_reply(500)])}, ORDERED, budget)
    with pytest.raises(UpstreamError) as info:
        await rig.call("ab")
    assert info.value.should_retry is False
    assert rig.counts() == {"a": 1}


async def test_attempt_timeouts_are_clipped_to_the_deadline() -> None:
    """No attempt may outlive the request's deadline."""
    routes = "  only-a: {strategy: single, target: a, deadline: 7}\n"
    rig = Rig({}, routes)
    await rig.call("only-a")
    sent = rig.providers["a"].requests[0].timeouts
    assert sent.total == 7
    assert sent.first_byte == 7


async def test_deadline_passed_before_a_retry_is_a_504() -> None:
    """A connection error that took the whole deadline is not retried."""

    class SlowFailure(ScriptedProvider):
        async def send(self, request):  # type: ignore[no-untyped-def]
            rig.clock.advance(5)
            raise UpstreamConnectionError("refused", deployment="a")

    routes = "  only-a: {strategy: single, target: a, deadline: 5}\n"
    rig = Rig({"a": SlowFailure()}, routes)
    with pytest.raises(UpstreamError) as info:
        await rig.call("only-a")
    assert info.value.status in (503, 504)
    assert rig.clock.sleeps == []


async def test_full_deployment_is_skipped_and_all_full_is_503() -> None:
    """C2: at its in-flight limit a deployment is skipped; with all full: fast 503."""
    rig = Rig({}, ORDERED, "resilience: {max_in_flight_per_deployment: 1}\n")
    rig.runtime.stats.started("a")
    assert (await rig.call("ab")).deployment.name == "b"
    rig.runtime.stats.started("b")
    with pytest.raises(Overloaded) as info:
        await rig.call("ab")
    assert info.value.status == 503
    assert info.value.headers["retry-after"] == "1"


async def test_ejected_deployment_is_routed_around_then_probed() -> None:
    """A12: after 5 failures a deployment is ejected (routing skips it); after the ejection
    time one request probes it, and success brings it back."""
    routes = "  ab: {strategy: weighted, targets: [{name: a, weight: 1000000000}, b]}\n"
    rig = Rig({"a": ScriptedProvider([error_reply(500)] * 5)}, routes)
    for _ in range(5):
        await rig.call("ab")
    assert rig.counts() == {"a": 5, "b": 5}
    ctx = RequestContext(request_id="t", kind=EndpointKind.CHAT, model="ab", body=dict(BODY))
    decision = rig.router.decide(ctx)
    assert decision.deployment.name == "b"
    assert any("ejected for 30s" in r.reason for r in decision.rejected)
    await rig.call("ab")
    assert rig.counts()["a"] == 5
    rig.clock.advance(30)
    assert (await rig.call("ab")).deployment.name == "a"


async def test_never_eject_everything_panic_then_degraded() -> None:
    """With every target ejected the route still routes (panic); a degraded target, if
    configured, serves instead."""
    routes = (
        "  only-a: {strategy: single, target: a}\n"
        "  safe: {strategy: single, target: a, degraded: cheap}\n"
    )
    rig = Rig(
        {"a": ScriptedProvider([error_reply(500)] * 15)}, routes, "resilience: {max_retries: 0}\n"
    )
    for _ in range(5):
        with pytest.raises(UpstreamError):
            await rig.call("only-a")
    ctx = RequestContext(request_id="t", kind=EndpointKind.CHAT, model="only-a", body=dict(BODY))
    panic = rig.router.decide(ctx)
    assert (panic.deployment.name, panic.panic) == ("a", True)
    ctx = RequestContext(request_id="t", kind=EndpointKind.CHAT, model="safe", body=dict(BODY))
    degraded = rig.router.decide(ctx)
    assert (degraded.deployment.name, degraded.degraded) == ("cheap", True)
    assert (await rig.call("safe")).deployment.name == "cheap"


async def test_route_timeouts_replace_the_deployments() -> None:
    """A route's `timeouts` apply to its attempts instead of each deployment's own."""
    routes = "  r: {strategy: single, target: a, timeouts: {first_byte: 3, idle: 2}}\n"
    rig = Rig({}, routes)
    await rig.call("r")
    sent = rig.providers["a"].requests[0].timeouts
    assert (sent.first_byte, sent.idle) == (3, 2)
