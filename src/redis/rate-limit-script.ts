import type { ScriptDefinition } from './define-script.ts'

/**
 * The GCRA (generic cell rate algorithm) check, one atomic script per call.
 *
 * KEYS[1] the subject's key, holding its TAT (theoretical arrival time) of the
 * Redis clock. ARGV: the window in microseconds (`windowMs * 1000`), limit, cost.
 *
 * Exact arithmetic: the emission interval `window / limit` µs is rarely whole
 * (limit 750 000 per 1 000 ms: 1.33… µs), and rounding it down let ~33 % more
 * through than documented. The TAT is kept as whole microseconds plus a
 * remainder in units of `1 / limit` µs (`"<µs>"` or `"<µs>.<remainder>"`; the
 * remainder is an integer numerator, not a decimal fraction), and
 * `cost * window / limit` is computed exactly (`muldiv`, no product above
 * 2^47). So the tolerance is exactly `window` µs: a burst of `limit` passes,
 * then `limit` per window, and in any span of `d` µs at most
 * `limit + floor(d * limit / window)` units pass.
 *
 * The time comes from `TIME` inside Redis, never from a client's clock. A denied
 * or over-limit (`cost > limit`) call changes nothing.
 *
 * Returns `{ allowed (0|1), remaining, retryAfterMs, resetAfterMs }`.
 */
export const RATE_LIMIT_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local W = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- a * b = q * m + r, 0 <= r < m, exactly, for integers below 2^46 (Horner over a's bits).
local function muldiv(a, b, m)
  local qb = math.floor(b / m)
  local rb = b - qb * m
  if rb < 0 then qb = qb - 1; rb = rb + m elseif rb >= m then qb = qb + 1; rb = rb - m end
  local bits = {}
  while a > 0 do
    local h = math.floor(a / 2)
    bits[#bits + 1] = a - 2 * h
    a = h
  end
  local q, r = 0, 0
  for i = #bits, 1, -1 do
    q = q * 2
    r = r * 2
    if r >= m then r = r - m; q = q + 1 end
    if bits[i] == 1 then
      q = q + qb
      r = r + rb
      if r >= m then r = r - m; q = q + 1 end
    end
  end
  return q, r
end
-- The TAT is tat + frac / limit microseconds.
local tat, frac = now, 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local whole, part = string.match(stored, '^(%d+)%.?(%d*)$')
  if whole then
    tat = tonumber(whole)
    frac = tonumber(part) or 0
    if frac >= limit then frac = 0 end
  end
end
if tat < now then tat = now; frac = 0 end
-- Units available at TAT (ta, fa): floor((W - (ta - now) - fa / limit) * limit / W).
local function left(ta, fa)
  local x = W - (ta - now)
  if x <= 0 then return 0 end
  local q, r = muldiv(x, limit, W)
  if r < fa then q = q - 1 end
  if q < 0 then return 0 end
  return q
end
-- Milliseconds until TAT (ta, fa), rounded up.
local function ms_until(ta, fa)
  local us = ta - now
  if fa > 0 then us = us + 1 end
  if us <= 0 then return 0 end
  return math.ceil(us / 1000)
end
if cost > limit then
  return {0, left(tat, frac), -1, ms_until(tat, frac)}
end
local q, r = muldiv(cost, W, limit)
local new_tat, new_frac = tat + q, frac + r
if new_frac >= limit then new_frac = new_frac - limit; new_tat = new_tat + 1 end
local over = new_tat - now - W
if over > 0 or (over == 0 and new_frac > 0) then
  if new_frac > 0 then over = over + 1 end
  return {0, left(tat, frac), math.ceil(over / 1000), ms_until(tat, frac)}
end
local ttl = ms_until(new_tat, new_frac)
local value = string.format('%.0f', new_tat)
if new_frac > 0 then value = value .. '.' .. string.format('%.0f', new_frac) end
redis.call('SET', KEYS[1], value, 'PX', ttl)
return {1, left(new_tat, new_frac), 0, ttl}
`

/** The rate-limit script as registered on clients (`guildstoreRateLimit`, one key). */
export const RATE_LIMIT_SCRIPT: ScriptDefinition = {
  name: 'guildstoreRateLimit',
  lua: RATE_LIMIT_LUA,
  numberOfKeys: 1,
}
