import type { ScriptDefinition } from './define-script.ts'

/**
 * The GCRA (generic cell rate algorithm) check, one atomic script per call.
 *
 * KEYS[1] the subject's key, holding its TAT (theoretical arrival time) in
 * microseconds of the Redis clock. ARGV: emission interval in microseconds
 * (`floor(windowMs * 1000 / limit)`, at least 1), limit, cost.
 *
 * The time comes from `TIME` inside Redis, never from a client's clock. A burst
 * of `limit` passes at once; after that one unit per interval. A denied or
 * over-limit (`cost > limit`) call changes nothing.
 *
 * Returns `{ allowed (0|1), remaining, retryAfterMs, resetAfterMs }`.
 */
export const RATE_LIMIT_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local capacity = interval * limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
local function left(until_tat)
  local n = math.floor((capacity - (until_tat - now)) / interval)
  if n < 0 then return 0 end
  return n
end
if cost > limit then
  return {0, left(tat), -1, math.ceil((tat - now) / 1000)}
end
local new_tat = tat + cost * interval
local over = new_tat - now - capacity
if over > 0 then
  return {0, left(tat), math.ceil(over / 1000), math.ceil((tat - now) / 1000)}
end
local ttl = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {1, left(new_tat), 0, ttl}
`

/** The rate-limit script as registered on clients (`guildstoreRateLimit`, one key). */
export const RATE_LIMIT_SCRIPT: ScriptDefinition = {
  name: 'guildstoreRateLimit',
  lua: RATE_LIMIT_LUA,
  numberOfKeys: 1,
}
