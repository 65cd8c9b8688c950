"""Live statistics shared through Redis: every process's outcomes in one view.

Per deployment, Redis holds the EWMA latency and time to first chunk, a sample count,
error counts in time buckets (the same sliding window as the memory statistics, on Redis's
clock) and each process's in-flight count. A sync round adds this process's batch of
outcomes: the EWMA moves as if each of the batch's ``n`` samples had been applied at the
batch mean (weight ``1 - (1 - alpha)^n``). Reads combine the merged view with this
process's in-flight count (exact) and fall back to the local statistics when the view is
stale. `in_flight()` (the executor's per-deployment cap) stays this process's own, like
`resilience.max_in_flight`; `get().in_flight` (what routing ranks by) counts every process.
"""

from __future__ import annotations

from polyroute.clock import Clock
from polyroute.config.schema import StatsConfig
from polyroute.state.base import DeploymentStats
from polyroute.state.local_stats import MemoryLiveStats
from polyroute.state.redis_conn import RedisConnection
from polyroute.state.redis_sync import FMT, STALE_ROUNDS

_BUCKETS = 10
_LIVE = 10.0  # seconds without a sync before a process's in-flight count is dropped

STATS_SYNC = (
    FMT
    + """
-- ARGV: prefix, instance, alpha, bucket width s, buckets, live s,
--   then 8 per deployment: name, n_latency, sum_latency, n_ttft, sum_ttft, ok, failed, in_flight
-- Reply: 6 per deployment: latency, ttft, samples, ok, failed, others' in-flight
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local prefix, me, alpha = ARGV[1], ARGV[2], tonumber(ARGV[3])
local width, buckets, live = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local bucket = math.floor(now / width)
local members = prefix .. ':stats:instances'
redis.call('ZADD', members, fmt(now), me)
redis.call('ZREMRANGEBYSCORE', members, '-inf', fmt(now - live))
redis.call('EXPIRE', members, 86400)
local keep = string.format('%d', math.ceil(width * (buckets + 1)))
local out = {}
local function ewma(h, field, n, sum)
  if n <= 0 then return end
  local mean = sum / n
  local old = tonumber(redis.call('HGET', h, field) or '')
  local new = mean
  if old then new = old + (1 - (1 - alpha) ^ n) * (mean - old) end
  redis.call('HSET', h, field, fmt(new))
end
for i = 7, #ARGV, 8 do
  local name = ARGV[i]
  local h = prefix .. ':stats:' .. name
  local ok, failed = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  ewma(h, 'latency', tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]))
  ewma(h, 'ttft', tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
  if ok + failed > 0 then
    redis.call('HINCRBY', h, 'samples', ok + failed)
    local eb = h .. ':err:' .. bucket
    redis.call('HINCRBY', eb, 'ok', ok)
    redis.call('HINCRBY', eb, 'failed', failed)
    redis.call('EXPIRE', eb, keep)
    redis.call('EXPIRE', h, 86400)
  end
  local fh = h .. ':inflight'
  redis.call('HSET', fh, me, ARGV[i + 7])
  redis.call('EXPIRE', fh, 86400)
  local sum_ok, sum_failed = 0, 0
  for b = bucket - buckets + 1, bucket do
    local v = redis.call('HMGET', h .. ':err:' .. b, 'ok', 'failed')
    sum_ok = sum_ok + (tonumber(v[1]) or 0)
    sum_failed = sum_failed + (tonumber(v[2]) or 0)
  end
  local others = 0
  local all = redis.call('HGETALL', fh)
  for j = 1, #all, 2 do
    if all[j] ~= me then
      if redis.call('ZSCORE', members, all[j]) then
        others = others + tonumber(all[j + 1])
      else
        redis.call('HDEL', fh, all[j])
      end
    end
  end
  out[#out + 1] = redis.call('HGET', h, 'latency') or ''
  out[#out + 1] = redis.call('HGET', h, 'ttft') or ''
  out[#out + 1] = redis.call('HGET', h, 'samples') or '0'
  out[#out + 1] = tostring(sum_ok)
  out[#out + 1] = tostring(sum_failed)
  out[#out + 1] = tostring(others)
end
return out
"""
)


class RedisLiveStats:
    """LiveStats (state.base) merged across processes; local reads, background sync."""

    def __init__(
        self,
        config: StatsConfig,
        clock: Clock,
        conn: RedisConnection,
        deployments: list[str],
        interval: float,
    ) -> None:
        self.local = MemoryLiveStats(config, clock)
        self._config = config
        self._clock = clock
        self._conn = conn
        self._deployments = list(deployments)
        self._stale_after = STALE_ROUNDS * interval
        self._script = conn.script(STATS_SYNC)
        self._pending: dict[str, list[float]] = {}
        self._view: dict[str, DeploymentStats] = {}
        self._fresh_until = float("-inf")

    def started(self, deployment: str) -> None:
        self.local.started(deployment)

    def finished(
        self, deployment: str, *, ok: bool, latency: float | None = None, ttft: float | None = None
    ) -> None:
        self.local.finished(deployment, ok=ok, latency=latency, ttft=ttft)
        pending = self._pending.get(deployment)
        if pending is None:
            pending = self._pending[deployment] = [0.0] * 6
        if latency is not None:
            pending[0] += 1
            pending[1] += latency
        if ttft is not None:
            pending[2] += 1
            pending[3] += ttft
        pending[4 if ok else 5] += 1

    def get(self, deployment: str) -> DeploymentStats:
        view = self._view.get(deployment)
        if view is None or self._clock.now() > self._fresh_until:
            return self.local.get(deployment)
        if not view.samples:  # nothing pushed yet by anyone: this process's own figures
            own = self.local.get(deployment)
            return DeploymentStats(
                own.latency, own.ttft, own.error_rate, own.in_flight + view.in_flight, own.samples
            )
        return DeploymentStats(
            view.latency,
            view.ttft,
            view.error_rate,
            view.in_flight + self.local.in_flight(deployment),
            view.samples,
        )

    def in_flight(self, deployment: str) -> int:
        return self.local.in_flight(deployment)

    def snapshot(self) -> dict[str, DeploymentStats]:
        names = set(self.local.snapshot()) | set(self._view)
        return {name: self.get(name) for name in sorted(names)}

    async def sync(self, conn: RedisConnection) -> None:
        pending, self._pending = self._pending, {}
        names = list(dict.fromkeys([*self._deployments, *pending]))
        width = self._config.error_window / _BUCKETS
        args: list[object] = [
            conn.prefix,
            conn.instance,
            self._config.ewma_alpha,
            width,
            _BUCKETS,
            _LIVE,
        ]
        for name in names:
            figures = pending.get(name) or [0.0] * 6
            args += (name, int(figures[0]), figures[1], int(figures[2]), figures[3])
            args += (int(figures[4]), int(figures[5]), self.local.in_flight(name))
        reply = await conn.call(self._script, [], args)
        view: dict[str, DeploymentStats] = {}
        for index, name in enumerate(names):
            latency, ttft, samples, ok, failed, others = reply[6 * index : 6 * index + 6]
            total = int(ok) + int(failed)
            view[name] = DeploymentStats(
                float(latency) if latency else None,
                float(ttft) if ttft else None,
                int(failed) / total if total else 0.0,
                int(others),
                int(samples),
            )
        self._view = view
        self._fresh_until = self._clock.now() + self._stale_after

    def stale(self) -> None:
        self._fresh_until = float("-inf")
