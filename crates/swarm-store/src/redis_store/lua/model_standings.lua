-- KEYS: per window, its cooldown hash, its requests sorted set and its learned-limits hash.
-- ARGV: per window rpm, rpd, tpm, day_start, day_end ("" = none). Reads only.
-- Returns, all as strings: the server's now (ms), then per window: cooling until (0 = not
-- cooling), reason, kind, requests and tokens of the last minute, requests and tokens of the
-- day, when it frees up if full now (-1: not full; -2: never), learned rpm, learned rpd ('' =
-- none), learned source.
local now = server_now()
local out = {ms(now)}
for i = 1, #KEYS, 3 do
  local until_ms = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  local reason, kind = '', ''
  if until_ms > now then
    reason = redis.call('HGET', KEYS[i], 'reason') or ''
    kind = redis.call('HGET', KEYS[i], 'kind') or ''
  else
    until_ms = 0
  end
  local a = (i - 1) / 3 * 5 + 1
  local full, at, mr, mt, dr, dt = window(KEYS[i + 1], now, 1, {ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]}, true)
  local frees = -1
  if full then
    if at == NEVER then frees = -2 else frees = at end
  end
  local learned = redis.call('HMGET', KEYS[i + 2], 'rpm', 'rpd', 'source')
  for _, v in ipairs({ms(until_ms), reason, kind, ms(mr), ms(mt), ms(dr), ms(dt), ms(frees),
                      learned[1] or '', learned[2] or '', learned[3] or ''}) do
    out[#out + 1] = v
  end
end
return out
