"""Circuit breakers shared through Redis: an ejection seen by one process holds for all.

Each process runs the memory breakers on its own outcomes (consecutive failures and the
failure rate are counted per process). What is shared is their verdicts: when a process
ejects a deployment or cools it down after a 429, the next sync round writes "open for N
more seconds" to Redis (Redis's clock, so hosts need not agree on the time); other
processes adopt an open state that lasts longer than theirs, and a probe that closes a
breaker again is shared the same way. After an ejection each process sends its own single
probe (N processes: up to N probes).
"""

from __future__ import annotations

from polyroute.clock import Clock
from polyroute.config.schema import BreakerConfig
from polyroute.state.memory import MemoryBreakers
from polyroute.state.redis_conn import RedisConnection
from polyroute.state.redis_sync import FMT

BREAKERS_SYNC = (
    FMT
    + """
-- ARGV: prefix, pushes, then 5 per push: name, open_for_s (<= 0: closed), reason,
--   ejections, half_open; then the names to read.
-- Reply: 4 per name read: open_for_s ('' none), reason, ejections, half_open
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local prefix, pushes = ARGV[1], tonumber(ARGV[2])
local i = 3
for _ = 1, pushes do
  local h = prefix .. ':breaker:' .. ARGV[i]
  local open_for = tonumber(ARGV[i + 1])
  local stored = tonumber(redis.call('HGET', h, 'until') or '0')
  if open_for > 0 then
    local till = now + open_for
    if till > stored then
      redis.call('HSET', h, 'until', fmt(till), 'reason', ARGV[i + 2],
        'ejections', ARGV[i + 3], 'half_open', ARGV[i + 4])
      redis.call('EXPIRE', h, string.format('%d', math.ceil(open_for) + 3600))
    end
  elseif stored <= now then
    redis.call('HSET', h, 'half_open', '0', 'reason', '')
  end
  i = i + 5
end
local out = {}
while i <= #ARGV do
  local v = redis.call('HMGET', prefix .. ':breaker:' .. ARGV[i], 'until', 'reason', 'ejections',
    'half_open')
  if v[1] then
    out[#out + 1] = fmt(tonumber(v[1]) - now)
    out[#out + 1] = v[2] or ''
    out[#out + 1] = v[3] or '0'
    out[#out + 1] = v[4] or '0'
  else
    out[#out + 1] = ''
    out[#out + 1] = ''
    out[#out + 1] = '0'
    out[#out + 1] = '0'
  end
  i = i + 1
end
return out
"""
)


class RedisBreakers(MemoryBreakers):
    """CircuitBreakers (state.base) whose ejections are shared by every process."""

    def __init__(
        self,
        config: BreakerConfig,
        clock: Clock,
        conn: RedisConnection,
        deployments: list[str],
    ) -> None:
        super().__init__(config, clock)
        self._conn = conn
        self._deployments = list(deployments)
        self._script = conn.script(BREAKERS_SYNC)
        self._dirty: set[str] = set()
        self.adopted = 0
        """Open or closed states taken over from other processes."""

    def _mark(self, deployment: str) -> tuple[float, bool] | None:
        breaker = self._breakers.get(deployment)
        return None if breaker is None else (breaker.open_until, breaker.half_open)

    def record_success(self, deployment: str) -> None:
        before = self._mark(deployment)
        super().record_success(deployment)
        if before is not None and self._mark(deployment) != before:
            self._dirty.add(deployment)

    def record_failure(self, deployment: str) -> None:
        before = self._mark(deployment)
        super().record_failure(deployment)
        if self._mark(deployment) != before:
            self._dirty.add(deployment)

    def record_rate_limited(self, deployment: str, retry_after: float | None) -> None:
        before = self._mark(deployment)
        super().record_rate_limited(deployment, retry_after)
        if self._mark(deployment) != before:
            self._dirty.add(deployment)

    async def sync(self, conn: RedisConnection) -> None:
        dirty, self._dirty = self._dirty, set()
        now = self._clock.now()
        args: list[object] = [conn.prefix, 0]
        pushes = 0
        for name in dirty:
            breaker = self._breakers.get(name)
            if breaker is None:
                continue
            open_for = breaker.open_until - now
            if open_for <= 0 and breaker.half_open:
                continue  # waiting for its probe: nothing new to tell
            args += (name, open_for, breaker.reason, breaker.ejections, int(breaker.half_open))
            pushes += 1
        args[1] = pushes
        names = list(dict.fromkeys([*self._deployments, *self._breakers]))
        args += names
        reply = await conn.call(self._script, [], args)
        now = self._clock.now()
        for index, name in enumerate(names):
            open_for, reason, ejections, half_open = reply[4 * index : 4 * index + 4]
            if open_for:
                self._adopt(name, now, float(open_for), reason.decode(), int(ejections), half_open)

    def _adopt(  # noqa: PLR0917 - one record's fields, in the script's order
        self, name: str, now: float, open_for: float, reason: str, ejections: int, half: bytes
    ) -> None:
        if open_for > 0:
            breaker = self._breakers.get(name)
            if breaker is not None and breaker.open_until >= now + open_for - 0.05:
                return  # ours lasts as long: nothing to adopt
            breaker = self._get(name)
            breaker.open_until = now + open_for
            breaker.reason = reason
            breaker.ejections = max(breaker.ejections, ejections)
            breaker.half_open = breaker.half_open or half == b"1"
            breaker.probing = False
            self.adopted += 1
            return
        breaker = self._breakers.get(name)
        if (
            half == b"0"
            and breaker is not None
            and breaker.half_open
            and breaker.open_until <= now
            and not breaker.probing
        ):
            breaker.half_open = False  # another process's probe succeeded
            breaker.reason = ""
            breaker.consecutive = 0
            self.adopted += 1

    def stale(self) -> None:
        return None  # adopted states simply run out; local verdicts continue
