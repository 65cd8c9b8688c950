"""Bandit state: what an adaptive route has learned, per context and arm, and its file.

The counts are discounted pseudo-observations of a reward in [0, 1]: an observation with
reward r and weight w adds w·r to `successes` and w·(1 - r) to `failures`; with a
discount g < 1 every arm of the context is first multiplied by g, so old evidence fades
(an effective memory of about 1 / (1 - g) observations per context). The strategy turns
them into Beta posteriors (prior + counts); the state itself knows nothing of priors, so
changing a route's prior takes effect on what was already learned.

`BanditState` is the seam: `MemoryBanditState` keeps one process's counts; a shared
backend (Redis: one hash per context, a script for the discounted update) can implement
the same four methods. `BanditFile` persists a state across restarts: JSON written to a
temporary file and renamed into place, so a crash never leaves half a file. Several
workers may share one file: each save adds what this worker learned since its last save
to what the file holds now (under an advisory lock), and adopts the sum, so workers also
pick up each other's learning at every save.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from polyroute.outcomes import Feedback, Outcome

if TYPE_CHECKING:
    from polyroute.state.redis_conn import RedisConnection

log = logging.getLogger("polyroute.state")

FORMAT = 1
"""Bumped whenever the file's meaning changes; files of another format are ignored."""


@dataclass(slots=True)
class ArmCounts:
    """One arm in one context."""

    successes: float = 0.0
    """Discounted sum of weight x reward."""
    failures: float = 0.0
    """Discounted sum of weight x (1 - reward)."""
    n: int = 0
    """Outcomes observed (requests this arm was chosen for and served or failed)."""
    feedback: int = 0
    """Feedback scores counted."""

    def copy(self) -> ArmCounts:
        return ArmCounts(self.successes, self.failures, self.n, self.feedback)


Snapshot = dict[str, dict[str, ArmCounts]]
"""context -> arm -> counts."""


class BanditState(Protocol):
    """Where one adaptive route's counts live."""

    def counts(self, context: str) -> Mapping[str, ArmCounts]:
        """The arms seen in `context` (arms never updated are absent)."""
        ...

    def update(
        self,
        context: str,
        arm: str,
        reward: float,
        weight: float,
        *,
        discount: float = 1.0,
        kind: str = "outcome",
    ) -> None:
        """Decay `context` by `discount`, then add one observation of `reward` (0..1) with
        `weight` to `arm`; `kind` ("outcome" or "feedback") says which count goes up."""
        ...

    def snapshot(self) -> Snapshot:
        """A deep copy of every context."""
        ...

    def replace(self, snapshot: Snapshot) -> None:
        """Adopt `snapshot` as the whole state."""
        ...


class MemoryBanditState:
    """In-process counts (one gateway process; see the module doc for several)."""

    def __init__(self) -> None:
        self._contexts: Snapshot = {}

    def counts(self, context: str) -> Mapping[str, ArmCounts]:
        return self._contexts.get(context, {})

    def update(
        self,
        context: str,
        arm: str,
        reward: float,
        weight: float,
        *,
        discount: float = 1.0,
        kind: str = "outcome",
    ) -> None:
        arms = self._contexts.setdefault(context, {})
        if discount < 1.0:
            for each in arms.values():
                each.successes *= discount
                each.failures *= discount
        counts = arms.setdefault(arm, ArmCounts())
        counts.successes += weight * reward
        counts.failures += weight * (1.0 - reward)
        if kind == "feedback":
            counts.feedback += 1
        else:
            counts.n += 1

    def snapshot(self) -> Snapshot:
        return {
            context: {arm: counts.copy() for arm, counts in arms.items()}
            for context, arms in self._contexts.items()
        }

    def replace(self, snapshot: Snapshot) -> None:
        self._contexts = {
            context: {arm: counts.copy() for arm, counts in arms.items()}
            for context, arms in snapshot.items()
        }


@runtime_checkable
class Learner(Protocol):
    """An outcome observer with learned state the gateway keeps across restarts.

    The gateway finds one as the `learner` attribute of a route's strategy, binds it to
    the route's name (and the shared Redis, with `state.backend: redis`), registers it with
    its observers, runs `persist_periodically` while serving and calls `flush` once more on
    shutdown.
    """

    def bind(self, route: str, redis: RedisConnection | None = None) -> None:
        """The route this learner serves; loads its persisted state (the file), or shares
        it through `redis`."""
        ...

    def observe(self, outcome: Outcome) -> None: ...

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None: ...

    async def persist_periodically(self) -> None:
        """Save now and then until cancelled."""
        ...

    async def flush(self) -> None:
        """Persist what was learned since the last save or sync."""
        ...


def state_dir() -> Path:
    """Default directory of learned state: ``$POLYROUTE_STATE_DIR``, else
    ``$XDG_STATE_HOME/polyroute``, else ``~/.local/state/polyroute``."""
    root = os.environ.get("POLYROUTE_STATE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "polyroute"
    return Path.home() / ".local" / "state" / "polyroute"


class BanditFile:
    """A bandit state on disk (see the module doc for the format and merging)."""

    def __init__(self, path: str | Path, route: str) -> None:
        self.path = Path(path)
        self.route = route

    def load(self) -> Snapshot:
        """The saved state; empty (with a warning) when the file is absent or unusable."""
        if not self.path.is_file():
            return {}
        try:
            return self._read()
        except (OSError, ValueError) as exc:
            log.warning("ignoring bandit state %s (%s); starting fresh", self.path, exc)
            return {}

    def merge_save(self, current: Snapshot, baseline: Snapshot) -> Snapshot:
        """Write what the file holds plus (`current` - `baseline`); return what was written.

        `baseline` is what this process last loaded or saved, so the difference is what it
        learned since; other writers' additions in the meantime are kept.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            try:
                on_disk = self._read() if self.path.is_file() else {}
            except (OSError, ValueError) as exc:
                log.warning("overwriting unusable bandit state %s (%s)", self.path, exc)
                on_disk = {}
            merged = add_difference(on_disk, current, baseline)
            self._write(merged)
        return merged

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read(self) -> Snapshot:
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} bandit state file")
        contexts = data.get("contexts")
        if not isinstance(contexts, dict):
            raise ValueError("'contexts' must be an object")
        snapshot: Snapshot = {}
        for context, arms in contexts.items():
            if not isinstance(arms, dict):
                raise ValueError(f"context {context!r} must be an object")
            snapshot[context] = {arm: _counts(value, context, arm) for arm, value in arms.items()}
        return snapshot

    def _write(self, snapshot: Snapshot) -> None:
        data = {
            "format": FORMAT,
            "route": self.route,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "contexts": {
                context: {
                    arm: {
                        "successes": round(c.successes, 6),
                        "failures": round(c.failures, 6),
                        "n": c.n,
                        "feedback": c.feedback,
                    }
                    for arm, c in sorted(arms.items())
                }
                for context, arms in sorted(snapshot.items())
            },
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _counts(value: Any, context: str, arm: str) -> ArmCounts:
    where = f"context {context!r} arm {arm!r}"
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object")
    successes, failures = value.get("successes"), value.get("failures")
    n, feedback = value.get("n", 0), value.get("feedback", 0)
    for name, number in (("successes", successes), ("failures", failures)):
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise ValueError(f"{where}: {name} must be a number")
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{where}: {name} must be finite and >= 0")
    for name, number in (("n", n), ("feedback", feedback)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError(f"{where}: {name} must be an integer >= 0")
    return ArmCounts(float(successes or 0), float(failures or 0), n, feedback)


def add_difference(base: Snapshot, current: Snapshot, baseline: Snapshot) -> Snapshot:
    """`base` + (`current` - `baseline`), arm by arm; pseudo-counts never go below 0.

    Without a discount this is exact. With one, `current` - `baseline` also carries the
    decay this process applied, which then decays the other writers' additions the same
    way: approximately what one process seeing all observations would hold.
    """
    result: Snapshot = {
        ctx: {arm: c.copy() for arm, c in arms.items()} for ctx, arms in base.items()
    }
    for context, arms in current.items():
        before = baseline.get(context, {})
        target = result.setdefault(context, {})
        for arm, now in arms.items():
            was = before.get(arm, _ZERO)
            into = target.setdefault(arm, ArmCounts())
            into.successes = max(0.0, into.successes + now.successes - was.successes)
            into.failures = max(0.0, into.failures + now.failures - was.failures)
            into.n = max(0, into.n + now.n - was.n)
            into.feedback = max(0, into.feedback + now.feedback - was.feedback)
    return result


_ZERO = ArmCounts()
