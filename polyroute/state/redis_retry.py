"""The retry budget shared through Redis: retries bounded by the requests of every process.

Requests and retries are counted in one-second buckets on Redis (Redis's clock) over the
budget's window; each process adds its counts every sync round and reads the totals back.
A retry is allowed while the totals plus this process's not yet pushed counts stay within
``ratio x requests + min_per_second x window`` (one floor for the whole gateway, not one per
process). Without a fresh view, the process's own budget decides.
"""

from __future__ import annotations

import math

from polyroute.clock import Clock
from polyroute.config.schema import RetryBudgetConfig
from polyroute.state.local_stats import MemoryRetryBudget
from polyroute.state.redis_conn import RedisConnection
from polyroute.state.redis_sync import STALE_ROUNDS

RETRY_SYNC = """
-- ARGV: prefix, bucket width s, buckets, requests, retries. Reply: {requests, retries}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local prefix, width, buckets = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local requests, retries = tonumber(ARGV[4]), tonumber(ARGV[5])
local bucket = math.floor(now / width)
local key = prefix .. ':retry:' .. bucket
if requests > 0 or retries > 0 then
  redis.call('HINCRBY', key, 'requests', requests)
  redis.call('HINCRBY', key, 'retries', retries)
  redis.call('EXPIRE', key, string.format('%d', math.ceil(width * (buckets + 1))))
end
local sum_requests, sum_retries = 0, 0
for b = bucket - buckets + 1, bucket do
  local v = redis.call('HMGET', prefix .. ':retry:' .. b, 'requests', 'retries')
  sum_requests = sum_requests + (tonumber(v[1]) or 0)
  sum_retries = sum_retries + (tonumber(v[2]) or 0)
end
return {sum_requests, sum_retries}
"""


class RedisRetryBudget:
    """RetryBudget (state.base) over every process's requests."""

    def __init__(
        self, config: RetryBudgetConfig, clock: Clock, conn: RedisConnection, interval: float
    ) -> None:
        self.local = MemoryRetryBudget(config, clock)
        self._clock = clock
        self._ratio = config.ratio
        self._floor = config.min_per_second * config.window
        self._buckets = max(1, math.ceil(config.window))
        self._width = config.window / self._buckets
        self._script = conn.script(RETRY_SYNC)
        self._stale_after = STALE_ROUNDS * interval
        self._requests = 0  # not pushed yet
        self._retries = 0
        self._totals = (0, 0)  # every process's, as of the last round
        self._fresh_until = float("-inf")

    def record_request(self) -> None:
        self.local.record_request()
        self._requests += 1

    def try_spend(self) -> bool:
        if self._clock.now() > self._fresh_until:
            allowed = self.local.try_spend()
        else:
            requests = self._totals[0] + self._requests
            retries = self._totals[1] + self._retries
            allowed = retries < self._ratio * requests + self._floor
            if allowed:
                self.local.try_spend()  # keep the local copy counting, for an outage
        if allowed:
            self._retries += 1
        return allowed

    async def sync(self, conn: RedisConnection) -> None:
        requests, retries = self._requests, self._retries
        self._requests = self._retries = 0
        args = [conn.prefix, self._width, self._buckets, requests, retries]
        reply = await conn.call(self._script, [], args)
        self._totals = (int(reply[0]), int(reply[1]))
        self._fresh_until = self._clock.now() + self._stale_after

    def stale(self) -> None:
        self._fresh_until = float("-inf")
