"""Redis limiter: one set of counters for every worker and instance, exact.

Admission is one Lua script (polyroute.limits.scripts.ADMIT): it decides every check of a
request and, only when all pass, reserves them all, atomically. The admissions that arrive
during one event-loop turn (or while the previous call is out) share one script call, each
still decided whole and in order, so under load a round trip serves many requests.
Settlements never make a client wait: they are queued and written the same way, many
requests per script call.

When Redis is unreachable (error, or no answer within `state.timeout`), this process's own
`MemoryLimiter` decides instead: limits then hold per process (N processes may admit up to
N times a global limit), budgets continue from the spend Redis last reported, and what is
spent meanwhile is added to Redis when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any

from polyroute.limits.checks import BUDGET, PARALLEL, TOKENS, WINDOW, Check, Demand, Verdict
from polyroute.limits.memory import MemoryLimiter, refused
from polyroute.limits.periods import keep_for, seconds_left, wall_now
from polyroute.limits.scripts import ADMIT, SETTLE
from polyroute.state.redis_conn import REDIS_ERRORS, RedisConnection

log = logging.getLogger("polyroute.limits")

_DIM_CODE = {"requests": "r", TOKENS: "r", PARALLEL: "p", BUDGET: "b"}
_WINDOW_US = f"{WINDOW * 1e6:.0f}"
MAX_BATCH = 200
"""Requests admitted or settled by one script call at most (keeps each call short)."""


class RedisLimiter:
    """Limits on Redis, with this process's memory limiter as the fallback."""

    def __init__(self, conn: RedisConnection, local: MemoryLimiter) -> None:
        self._conn = conn
        self.local = local
        self._prefix = f"{conn.prefix}:limit:"
        self._admit = conn.script(ADMIT)
        self._settle = conn.script(SETTLE)
        self._admissions: list[tuple[Demand, asyncio.Future[Verdict]]] = []
        self._admitter: asyncio.Task[None] | None = None
        self._queue: list[tuple[Demand, int, float]] = []
        self._writer: asyncio.Task[None] | None = None
        self._owed: dict[tuple[str, str], float] = {}
        """(budget key, period) -> USD spent that Redis has not been told about yet."""
        self.now: float | None = None
        """Tests: a fixed time (seconds) instead of Redis's clock."""
        conn.on_recover(self._pay_owed)

    async def admit(self, demand: Demand) -> Verdict:
        if not self._conn.usable():
            return self._decide_here(demand)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Verdict] = loop.create_future()
        self._admissions.append((demand, future))
        if self._admitter is None or self._admitter.done():
            self._admitter = loop.create_task(self._admit_batches())
        return await future

    def _decide_here(self, demand: Demand) -> Verdict:
        verdict = self.local.decide(demand)
        verdict.local = True
        return verdict

    async def _admit_batches(self) -> None:
        """Send the queued admissions, a batch per script call, until none is left (one
        call in flight at a time: what arrives meanwhile goes in the next batch)."""
        await asyncio.sleep(0)  # let the admissions of this loop turn join the batch
        while self._admissions:
            batch = self._admissions[:MAX_BATCH]
            del self._admissions[:MAX_BATCH]
            try:
                await self._admit_batch(batch)
            except BaseException as exc:  # never leave a request waiting for ever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                raise

    async def _admit_batch(self, batch: list[tuple[Demand, asyncio.Future[Verdict]]]) -> None:
        batch = [(demand, future) for demand, future in batch if not future.cancelled()]
        if not batch:
            return
        keys: list[str] = []
        words = [self._now_word(), _WINDOW_US]
        for demand, _ in batch:
            words += (demand.request_id, f"{demand.lease * 1e6:.0f}", str(len(demand.checks)))
            for check in demand.checks:
                keys.append(self._prefix + check.key)
                keep = keep_for(check.period) if check.dim == BUDGET else None
                words += (
                    _DIM_CODE[check.dim],
                    repr(check.limit),
                    repr(check.amount),
                    str(keep or 0),
                )
        reply: list[bytes] | None = None
        if self._conn.usable():
            with contextlib.suppress(*REDIS_ERRORS):  # counted; decided locally below
                reply = (await self._conn.call(self._admit, keys, [" ".join(words)])).split()
        offset = 0
        for demand, future in batch:
            if reply is None:
                verdict = self._decide_here(demand)
            else:
                size = 2 + 5 * len(demand.checks)
                verdict = self._verdict(demand, reply[offset : offset + size])
                offset += size
            if not future.cancelled():
                future.set_result(verdict)
            elif verdict.allowed:  # nobody is waiting for it: give the reservation back
                self.release(demand, verdict)

    def _verdict(self, demand: Demand, reply: list[bytes]) -> Verdict:
        allowed = reply[0] == b"1"
        remaining: list[float] = []
        reset: list[float] = []
        spent: dict[str, float] = {}
        passed: list[bool] = []
        failed: int | None = None
        retry = 0.0
        for index, check in enumerate(demand.checks):
            ok, left, reset_us, wait_us, spend = reply[2 + 5 * index : 7 + 5 * index]
            passed.append(ok == b"1")
            remaining.append(float(left))
            reset_s = float(reset_us)
            reset.append(reset_s / 1e6 if reset_s >= 0 else -1.0)
            if check.dim == BUDGET:
                value = float(spend)
                if not allowed and ok == b"1":
                    value -= check.amount  # the script counted a reservation it did not make
                spent[check.key] = value
                self.local.adopt_spend(check.key, check.period, value)
            if ok != b"1":
                wait = _wait(check, float(wait_us))
                if failed is None or wait > retry:
                    failed, retry = index, wait
        if not allowed:
            refused(demand.checks, passed, remaining, reset)
        return Verdict(allowed, remaining, reset, failed, retry, local=False, spent=spent)

    def settle(self, demand: Demand, verdict: Verdict, tokens: int, cost: float) -> None:
        if verdict.local:  # decided here while Redis was unreachable
            self.local.settle_now(demand, tokens, cost)
            self._owe(demand.checks, cost)  # nothing of it is in Redis yet
            return
        self._queue.append((demand, tokens, cost))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    def release(self, demand: Demand, verdict: Verdict) -> None:
        self.settle(demand, verdict, demand.tokens, demand.cost)

    async def _write(self) -> None:
        """Write queued settlements, a batch per call, until the queue is empty."""
        await asyncio.sleep(0)  # let the settlements of this loop turn join the batch
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            keys: list[str] = []
            words = [self._now_word(), _WINDOW_US]
            for demand, tokens, cost in batch:
                for check in demand.checks:
                    if check.dim == TOKENS:
                        code, delta = "t", float(tokens - check.amount)
                    elif check.dim == PARALLEL:
                        code, delta = "p", 0.0
                    elif check.dim == BUDGET:
                        code, delta = "b", cost - check.amount
                    else:
                        continue
                    keys.append(self._prefix + check.key)
                    keep = str(keep_for(check.period) or 0)
                    words += (code, repr(check.limit), repr(delta), keep, demand.request_id)
            if not keys:
                continue
            if self._conn.usable():
                try:
                    await self._conn.call(self._settle, keys, [" ".join(words)])
                    continue
                except REDIS_ERRORS:
                    pass
            # Redis missed these: their parallel slots expire with the lease, the token
            # reservations stand, and the spend differences are added when Redis is back
            for demand, _, cost in batch:
                self._owe(demand.checks, cost - demand.cost)

    def _owe(self, checks: list[Check], amount: float) -> None:
        if not amount:
            return
        for check in checks:
            if check.dim == BUDGET:
                slot = (check.key, check.period)
                self._owed[slot] = self._owed.get(slot, 0.0) + amount

    async def _pay_owed(self, client: Any) -> None:
        """Recovery hook: add the spend Redis missed to its counters (one script call)."""
        if not self._owed:
            return
        owed, self._owed = self._owed, {}
        keys = [self._prefix + key for key, _ in owed]
        words = ["-", _WINDOW_US]
        for (_, period), amount in owed.items():
            words += ("b", "0", repr(amount), str(keep_for(period) or 0), "-")
        try:
            await self._settle.run(client, keys, [" ".join(words)])
        except REDIS_ERRORS:
            for slot, amount in owed.items():
                self._owed[slot] = self._owed.get(slot, 0.0) + amount
            raise
        log.info("limits: added %.6f USD spent during the Redis outage", sum(owed.values()))

    def _now_word(self) -> str:
        return "-" if self.now is None else f"{self.now * 1e6:.0f}"

    @property
    def owed(self) -> float:
        """USD spent while Redis was unreachable and not yet added to it."""
        return sum(self._owed.values())

    async def flush(self) -> None:
        """Wait until every queued settlement has been written (or given up on)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def aclose(self) -> None:
        await self.flush()


def _wait(check: Check, wait_us: float) -> float:
    if wait_us == -1:
        return math.inf
    if wait_us == -2:
        left = seconds_left(check.period, wall_now())
        return left if left is not None else math.inf
    return wait_us / 1e6
