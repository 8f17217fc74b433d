-- KEYS: the model's cooldown hash, then the request sets of the model and of each group it
-- shares a bucket with. ARGV: tokens, then per request set: rpm, rpd, tpm, day_start, day_end
-- ("" = none). One reservation by the server's clock: refused while the model cools down, or
-- when one more request would pass a limit of any window; else recorded in every window.
-- Requests older than TRIM are trimmed on every call.
-- Returns {'granted', at_ms, '', ''}, {'cooling', until_ms, reason, kind} or {'full', free_at_ms
-- (-1 = never), limit, ''}.
local cool = KEYS[1]
local now = server_now()
local tokens = tonumber(ARGV[1])
for k = 2, #KEYS do redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', ms(now - TRIM)) end
local until_ms = tonumber(redis.call('HGET', cool, 'until') or '0')
if until_ms > now then
  return {'cooling', until_ms, redis.call('HGET', cool, 'reason') or '', redis.call('HGET', cool, 'kind') or ''}
end
-- Of several full windows, the one that frees last: the request fits only once all have.
local full, free_at = nil, nil
for k = 2, #KEYS do
  local a = 2 + (k - 2) * 5
  local f, at = window(KEYS[k], now, tokens, {ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]})
  if f and (free_at == nil or at > free_at) then full, free_at = f, at end
end
if full then
  if free_at == NEVER then return {'full', -1, full, ''} end
  return {'full', free_at, full, ''}
end
for k = 2, #KEYS do
  local reqs = KEYS[k]
  local n = redis.call('ZCOUNT', reqs, ms(now), ms(now))
  while redis.call('ZADD', reqs, 'NX', ms(now), ms(now) .. '-' .. ms(n) .. ':' .. ms(tokens)) == 0 do
    n = n + 1
  end
  -- Every request in the set is past trimming once the window has been idle that long.
  redis.call('PEXPIRE', reqs, TRIM)
end
return {'granted', now, '', ''}
