"""Circuit breakers and the retry budget, on a virtual clock."""

from __future__ import annotations

from polyroute.clock import FakeClock
from polyroute.config.schema import BreakerConfig, RetryBudgetConfig
from polyroute.state.memory import MemoryBreakers, MemoryRetryBudget


def breakers(clock: FakeClock, **overrides: float) -> MemoryBreakers:
    return MemoryBreakers(BreakerConfig.model_validate(overrides), clock)


def test_opens_after_consecutive_failures() -> None:
    """Five failures in a row eject the deployment for the base ejection time."""
    clock = FakeClock()
    b = breakers(clock)
    for _ in range(4):
        b.record_failure("d")
    assert b.status("d").state == "closed"
    b.record_failure("d")
    status = b.status("d")
    assert status.state == "open"
    assert status.retry_in == 30.0
    assert "5 consecutive failures" in status.reason
    assert not b.acquire("d")


def test_success_resets_the_consecutive_count() -> None:
    """Failures separated by a success do not add up to an ejection."""
    b = breakers(FakeClock())
    for _ in range(4):
        b.record_failure("d")
    b.record_success("d")
    for _ in range(4):
        b.record_failure("d")
    assert b.status("d").state == "closed"


def test_half_open_allows_one_probe_and_closes_on_success() -> None:
    """After the ejection, one probe at a time; its success closes the breaker."""
    clock = FakeClock()
    b = breakers(clock)
    for _ in range(5):
        b.record_failure("d")
    clock.advance(30.0)
    assert b.status("d").state == "half_open"
    assert b.acquire("d")
    assert not b.acquire("d"), "a second concurrent probe is refused"
    b.record_success("d")
    assert b.status("d").state == "closed"
    assert b.acquire("d")
    assert b.acquire("d")


def test_ejection_grows_and_is_capped() -> None:
    """A failed probe re-ejects for base x n, never beyond max_ejection."""
    clock = FakeClock()
    b = breakers(clock, base_ejection=30, max_ejection=70)
    for _ in range(5):
        b.record_failure("d")
    durations = [b.status("d").retry_in]
    for _ in range(3):
        clock.advance(durations[-1])
        assert b.acquire("d")
        b.record_failure("d")
        durations.append(b.status("d").retry_in)
    assert durations == [30.0, 60.0, 70.0, 70.0]


def test_long_healthy_stretch_forgives_ejections() -> None:
    """Ejections long ago do not lengthen a new one."""
    clock = FakeClock()
    b = breakers(clock, base_ejection=10, max_ejection=100)
    for _ in range(5):
        b.record_failure("d")
    clock.advance(10)
    b.acquire("d")
    b.record_success("d")
    clock.advance(1000)
    for _ in range(5):
        b.record_failure("d")
    assert b.status("d").retry_in == 10.0


def test_failure_rate_trips_without_consecutive_failures() -> None:
    """Half the requests failing over the window ejects, once enough requests were seen."""
    clock = FakeClock()
    b = breakers(clock, min_requests=10, failure_rate=0.5, consecutive_failures=100)
    for _ in range(4):
        b.record_failure("d")
        b.record_success("d")
    assert b.status("d").state == "closed"  # 8 requests: below min_requests
    b.record_failure("d")
    b.record_success("d")
    b.record_failure("d")
    assert b.status("d").state == "open"


def test_failure_rate_window_slides() -> None:
    """Failures older than the window no longer count."""
    clock = FakeClock()
    b = breakers(clock, min_requests=4, failure_rate=0.5, consecutive_failures=100, window=10)
    b.record_failure("d")
    b.record_failure("d")
    clock.advance(11)
    b.record_success("d")
    b.record_success("d")
    b.record_failure("d")
    b.record_success("d")
    assert b.status("d").state == "closed"


def test_rate_limit_cools_down_without_counting_as_broken() -> None:
    """A 429 rests the deployment for Retry-After (or the default), then it is simply back."""
    clock = FakeClock()
    b = breakers(clock, rate_limit_cooldown=5)
    b.record_rate_limited("d", 2.0)
    assert not b.acquire("d")
    assert b.status("d").retry_in == 2.0
    clock.advance(2.0)
    assert b.status("d").state == "closed"
    assert b.status("d").ejections == 0
    b.record_rate_limited("d", None)
    assert b.status("d").retry_in == 5.0


def test_unknown_deployment_is_healthy() -> None:
    """A deployment with no history is closed and admitted."""
    b = breakers(FakeClock())
    assert b.status("never-seen").state == "closed"
    assert b.acquire("never-seen")
    assert b.snapshot() == {}


def test_retry_budget_ratio_and_floor() -> None:
    """Retries stop at ratio x requests + floor within the window, and recover after it."""
    clock = FakeClock()
    budget = MemoryRetryBudget(RetryBudgetConfig(ratio=0.2, min_per_second=0.5, window=10), clock)
    for _ in range(100):
        budget.record_request()
    granted = sum(budget.try_spend() for _ in range(100))
    assert granted == 25  # 0.2 x 100 + 0.5/s x 10 s
    clock.advance(11)
    for _ in range(10):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(100)) == 7  # 0.2 x 10 + 5
