"""The figures bench/eval_bandit.py prints from its replays: regret, when each method
identifies the best arm (the bandit's posterior, a uniform A/B's posterior or z-test, a
fixed-horizon A/B's sample size), and their summaries over seeds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special  # type: ignore[import-untyped]

CONFIDENCE = 0.95
Z95, Z_POWER80 = 1.959964, 0.841621
Floats = NDArray[np.float64]


@dataclass
class Run:
    arms: NDArray[np.int64]  # arm chosen per request
    rewards: Floats  # (N, 2) both arms' rewards of each sampled prompt
    posteriors: Floats | None  # (N, 2, 2): global alpha, beta per arm after each request
    labels: list[str] | None


def regret(run: Run, best: int) -> tuple[float, float]:
    """Cumulative regret vs the best fixed arm and vs the per-prompt oracle."""
    got = run.rewards[np.arange(len(run.arms)), run.arms]
    return float((run.rewards[:, best] - got).sum()), float((run.rewards.max(1) - got).sum())


def prob_greater(a1: Floats, b1: Floats, a2: Floats, b2: Floats, nodes: int = 96) -> Floats:
    """P(X > Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2), vectorised over the arrays.

    Gauss-Legendre quadrature of f_Y(y) (1 - I_y(a1, b1)) over Y's central mass
    (mean +- 12 sd, within [0, 1]); Y's density is smooth there (alpha, beta >= 1).
    """
    x, w = np.polynomial.legendre.leggauss(nodes)
    mean = a2 / (a2 + b2)
    sd = np.sqrt(a2 * b2 / ((a2 + b2) ** 2 * (a2 + b2 + 1)))
    lo = np.clip(mean - 12 * sd, 0.0, 1.0)[:, None]
    hi = np.clip(mean + 12 * sd, 0.0, 1.0)[:, None]
    y = np.clip(lo + (hi - lo) * (x[None, :] + 1) / 2, 1e-12, 1 - 1e-12)
    a2c, b2c = a2[:, None], b2[:, None]
    log_pdf = (a2c - 1) * np.log(y) + (b2c - 1) * np.log1p(-y) - special.betaln(a2c, b2c)
    above = 1.0 - special.betainc(a1[:, None], b1[:, None], y)
    total = (np.exp(log_pdf) * above * w[None, :]).sum(1) * (hi[:, 0] - lo[:, 0]) / 2
    return np.asarray(np.clip(total, 0.0, 1.0), dtype=np.float64)


def first_stable(holds: NDArray[np.bool_]) -> int | None:
    """Requests after which `holds` is true to the end (1-based); None if not at the end."""
    if not holds[-1]:
        return None
    failing = np.flatnonzero(~holds)
    return int(failing[-1]) + 2 if len(failing) else 1


def identify_bayes(posteriors: Floats, best: int) -> int | None:
    other = 1 - best
    p = prob_greater(
        posteriors[:, best, 0],
        posteriors[:, best, 1],
        posteriors[:, other, 0],
        posteriors[:, other, 1],
    )
    return first_stable(p >= CONFIDENCE)


def ab_posteriors(run: Run, prior: tuple[float, float] = (1.0, 1.0)) -> Floats:
    """The posteriors the strategy's update rule gives on the A/B's own observations."""
    got = run.rewards[np.arange(len(run.arms)), run.arms]
    out = np.zeros((len(run.arms), 2, 2))
    for a in range(2):
        mine = run.arms == a
        out[:, a, 0] = prior[0] + np.cumsum(np.where(mine, got, 0.0))
        out[:, a, 1] = prior[1] + np.cumsum(np.where(mine, 1.0 - got, 0.0))
    return out


def identify_ztest(run: Run, best: int) -> int | None:
    got = run.rewards[np.arange(len(run.arms)), run.arms]
    stats = []
    for a in range(2):
        mine = run.arms == a
        n = np.cumsum(mine)
        total = np.cumsum(np.where(mine, got, 0.0))
        squares = np.cumsum(np.where(mine, got * got, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / n
            var = (squares - n * mean * mean) / (n - 1)
        stats.append((n, mean, var))
    (n1, m1, v1), (n2, m2, v2) = stats[best], stats[1 - best]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (m1 - m2) / np.sqrt(v1 / n1 + v2 / n2)
    enough = (n1 >= 2) & (n2 >= 2)
    return first_stable(enough & (np.nan_to_num(z, nan=0.0, posinf=1e9) >= Z95))


def fixed_horizon(rewards: Floats) -> int:
    """Total sample size of a 50/50 test (alpha 0.05 two-sided, power 0.8) for the true
    means and variances of the arms' rewards on the test side."""
    delta = abs(float(rewards[:, 1].mean() - rewards[:, 0].mean()))
    variance = float(rewards[:, 0].var() + rewards[:, 1].var())
    per_arm = (Z95 + Z_POWER80) ** 2 * variance / delta**2
    return 2 * math.ceil(per_arm)


def neyman_bound(rewards: Floats) -> float:
    """The most any allocation can save over 50/50 at equal confidence: a 50/50 split needs
    2 (s1^2 + s2^2) z^2 / d^2 requests, the best split (n_i proportional to s_i, Neyman)
    (s1 + s2)^2 z^2 / d^2; their ratio, between 1 (equal spreads) and 2."""
    s1, s2 = float(rewards[:, 0].std()), float(rewards[:, 1].std())
    return 2 * (s1 * s1 + s2 * s2) / (s1 + s2) ** 2


def summary(values: Sequence[float], digits: int = 1) -> str:
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def identified(values: Sequence[int | None], horizon: int) -> tuple[float, str]:
    """Median (runs that never identify count as the horizon) and a readable summary."""
    filled = [horizon if v is None else v for v in values]
    median = float(statistics.median(filled))
    never = sum(v is None for v in values)
    quartiles = np.percentile(filled, [25, 75])
    text = f"median {median:.0f} (IQR {quartiles[0]:.0f}-{quartiles[1]:.0f})"
    if never:
        text += f", {never}/{len(values)} never (> {horizon})"
    return median, text
