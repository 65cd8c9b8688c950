"""Off-policy estimators: what a new routing policy would have scored on logged traffic.

For logged requests i with context x_i, the logged action a_i (the deployment routing
chose), its probability p_i under the logging policy (the logged `propensity`) and the
observed reward r_i, and a new deterministic policy pi:

- IPS (inverse propensity scoring): ``(1/n) sum 1[pi(x_i) = a_i] r_i / p_i``: unbiased
  when every p_i > 0 for the actions pi takes, but noisy when propensities are small.
- SNIPS (self-normalised IPS): ``sum w_i r_i / sum w_i`` with ``w_i = 1[...] / p_i``:
  slightly biased, much steadier; None when pi never agrees with the log.
- DR (doubly robust): ``(1/n) sum [q(x_i, pi(x_i)) + 1[pi(x_i) = a_i] (r_i - q(x_i, a_i))
  / p_i]`` with a reward model q (here: the mean logged reward per deployment): unbiased
  if either the propensities or the reward model are right, with less variance than IPS.
- DM (direct method): ``(1/n) sum q(x_i, pi(x_i))``: the reward model alone.

References: Dudik, Langford & Li, "Doubly Robust Policy Evaluation and Learning" (2011);
Swaminathan & Joachims, "The Self-Normalized Estimator for Counterfactual Learning" (2015).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Logged:
    """One logged decision with its reward, as the estimators need it."""

    action: str
    propensity: float
    reward: float


@dataclass(frozen=True, slots=True)
class Estimates:
    n: int
    matched: int
    """How many logged actions the new policy agrees with."""
    ips: float | None
    snips: float | None
    dr: float | None
    dm: float | None


def estimate(
    logged: Sequence[Logged],
    chosen: Sequence[str | None],
    model: Callable[[str], float | None],
) -> Estimates:
    """IPS, SNIPS, DR and DM of the policy that chose `chosen[i]` for `logged[i]` (None:
    it could not route that request; it then counts as reward 0), with `model(action)` the
    reward model (None where it knows nothing of the action)."""
    n = len(logged)
    if n == 0:
        return Estimates(0, 0, None, None, None, None)
    ips = weights = weighted = dr = dm = 0.0
    matched = 0
    model_known = True
    for item, action in zip(logged, chosen, strict=True):
        q_new = model(action) if action is not None else 0.0
        if q_new is None:
            model_known = False
            q_new = 0.0
        dm += q_new
        dr += q_new
        if action is not None and action == item.action and item.propensity > 0:
            weight = 1.0 / item.propensity
            matched += 1
            ips += weight * item.reward
            weights += weight
            weighted += weight * item.reward
            q_logged = model(item.action) or 0.0
            dr += weight * (item.reward - q_logged)
    return Estimates(
        n=n,
        matched=matched,
        ips=ips / n,
        snips=weighted / weights if weights > 0 else None,
        dr=dr / n if model_known else None,
        dm=dm / n if model_known else None,
    )


def mean_by(pairs: Sequence[tuple[str, float]]) -> dict[str, float]:
    """The mean value per key of (key, value) pairs."""
    totals: dict[str, list[float]] = {}
    for key, value in pairs:
        entry = totals.setdefault(key, [0.0, 0.0])
        entry[0] += value
        entry[1] += 1
    return {key: total / count for key, (total, count) in totals.items()}
