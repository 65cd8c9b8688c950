"""The Lua scripts of the Redis limiter: one round trip admits the requests that arrived in
one event-loop turn (each decided whole, in order), one settles a batch of finished ones.

Times are microseconds from Redis's own clock (``TIME``), so every process shares one time
line whatever its host's clock says; a caller may pass ``now`` instead (tests). Arguments
and replies travel as one space-separated string each, because encoding and parsing two
dozen small values is most of a Python client's cost per call; numbers are written with
``%.17g``, because Lua would otherwise print a microsecond timestamp as ``1.7e+15``.
"""

from __future__ import annotations

_PRELUDE = """
local function fmt(x) return string.format('%.17g', x) end
local function words(text)
  local out = {}
  for word in string.gmatch(text, '%S+') do out[#out + 1] = word end
  return out
end
local function clock(arg)
  if arg ~= '-' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

ADMIT = (
    _PRELUDE
    + """
-- Admissions of one or more requests, each decided (and reserved) whole, in order.
-- KEYS: one per check, request after request.
-- ARGV[1]: 'now_us (- = Redis TIME) window_us', then per request 'member lease_us checks'
--   followed by 4 words per check: dim (r rate, p parallel slots, b budget), limit, amount,
--   keep_s (budget: 0 = for ever).
-- Reply: per request 'allowed now_us' then 5 words per check: ok remaining reset_us wait_us
--   spent (wait_us: -1 never fits, -2 until the budget period ends).
local a = words(ARGV[1])
local now, window = clock(a[1]), tonumber(a[2])
local out = {}
local k, w = 0, 2
while w < #a do
  local member, lease, n = a[w + 1], tonumber(a[w + 2]), tonumber(a[w + 3])
  w = w + 3
  local head = #out + 1
  out[head] = '1'
  out[head + 1] = fmt(now)
  local new = {}
  local allowed = true
  for i = 1, n do
    local b = w + (i - 1) * 4
    local dim, limit, amount = a[b + 1], tonumber(a[b + 2]), tonumber(a[b + 3])
    local key = KEYS[k + i]
    local ok, left, reset, wait, spent = true, 0, -1, 0, 0
    if dim == 'r' then
      local interval = window / limit
      local tat = tonumber(redis.call('GET', key) or '0')
      if tat < now then tat = now end
      local nt = tat + amount * interval
      if nt - window <= now + 0.001 then
        left = math.floor((now + window - nt) / interval + 1e-9)
        reset = nt - now
        new[i] = nt
      else
        ok = false
        left = math.floor((now + window - tat) / interval + 1e-9)
        reset = tat - now
        if amount > limit then wait = -1 else wait = nt - window - now end
      end
    elseif dim == 'p' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - lease))
      local taken = redis.call('ZCARD', key)
      if taken + 1 <= limit then
        left = limit - taken - 1
      else
        ok = false
        left = limit - taken
        wait = 1000000
      end
    else
      spent = tonumber(redis.call('GET', key) or '0')
      if spent < limit and spent + amount <= limit + limit * 1e-9 then
        left = limit - spent - amount
        spent = spent + amount
      else
        ok = false
        left = limit - spent
        wait = -2
      end
    end
    if not ok then allowed = false end
    out[#out + 1] = ok and '1' or '0'
    out[#out + 1] = fmt(left)
    out[#out + 1] = fmt(reset)
    out[#out + 1] = fmt(wait)
    out[#out + 1] = fmt(spent)
  end
  if allowed then
    for i = 1, n do
      local b = w + (i - 1) * 4
      local dim, amount, keep = a[b + 1], tonumber(a[b + 3]), tonumber(a[b + 4])
      local key = KEYS[k + i]
      if dim == 'r' then
        local ms = math.ceil((new[i] - now) / 1000) + 1000
        redis.call('SET', key, fmt(new[i]), 'PX', string.format('%d', ms))
      elseif dim == 'p' then
        redis.call('ZADD', key, fmt(now), member)
        redis.call('PEXPIRE', key, string.format('%d', math.ceil(lease / 1000) + 1000))
      else
        redis.call('INCRBYFLOAT', key, fmt(amount))
        if keep > 0 then redis.call('EXPIRE', key, string.format('%d', keep)) end
      end
    end
  else
    out[head] = '0'
  end
  k = k + n
  w = w + n * 4
end
return table.concat(out, ' ')
"""
)

SETTLE = (
    _PRELUDE
    + """
-- KEYS: one per entry (entries of many requests may come in one call).
-- ARGV[1]: 'now_us (- = Redis TIME) window_us', then 5 words per entry:
--   dim (t tokens, p parallel slot, b budget), limit, delta, keep_s, member (request id).
local a = words(ARGV[1])
local now, window = clock(a[1]), tonumber(a[2])
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 5
  local dim, limit, delta, keep = a[b + 1], tonumber(a[b + 2]), tonumber(a[b + 3]),
    tonumber(a[b + 4])
  local key = KEYS[i]
  if dim == 't' and delta ~= 0 then
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat >= now or delta > 0 then
      if tat < now then tat = now end
      local nt = tat + delta * window / limit
      if nt > now then
        local ms = math.ceil((nt - now) / 1000) + 1000
        redis.call('SET', key, fmt(nt), 'PX', string.format('%d', ms))
      else
        redis.call('DEL', key)
      end
    end
  elseif dim == 'p' then
    redis.call('ZREM', key, a[b + 5])
  elseif dim == 'b' and delta ~= 0 then
    local value = tonumber(redis.call('INCRBYFLOAT', key, fmt(delta)))
    if value < 0 then redis.call('SET', key, '0', 'KEEPTTL') end
    if keep > 0 and redis.call('TTL', key) < 0 then
      redis.call('EXPIRE', key, string.format('%d', keep))
    end
  end
end
return #KEYS
"""
)
