-- KEYS: the model's cooldown hash, its requests sorted set
-- ARGV: tokens, rpm, rpd, tpm ("" = not limited)
-- One reservation by the server's clock: refused while the model cools down, or when one more
-- request would pass a limit (`window_full` in src/models.rs is the same rule); else recorded.
-- Requests are members `<at_ms>-<n>:<tokens>` scored by `at_ms`: `n` makes two requests of the
-- same ms distinct. Requests older than 24 h are trimmed on every call.
-- Returns {'granted', at_ms, '', ''}, {'cooling', until_ms, reason, kind} or {'full', free_at_ms
-- (-1 = never), limit, ''}.
local cool, reqs = KEYS[1], KEYS[2]
local MINUTE, DAY, NEVER = 60000, 86400000, math.huge
local function ms(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', reqs, '-inf', ms(now - DAY))
local until_ms = tonumber(redis.call('HGET', cool, 'until') or '0')
if until_ms > now then
  return {'cooling', until_ms, redis.call('HGET', cool, 'reason') or '', redis.call('HGET', cool, 'kind') or ''}
end
local tokens = tonumber(ARGV[1])
-- The last minute's requests: member, score, member, score, ... oldest first.
local minute = redis.call('ZRANGEBYSCORE', reqs, '(' .. ms(now - MINUTE), '+inf', 'WITHSCORES')
local n = #minute / 2
local function tokens_of(member) return tonumber(string.match(member, ':(%d+)$')) or 0 end
-- Of several full windows, the one that frees last: the request fits only once all have.
local full, free_at = nil, nil
local function note(limit, at)
  if free_at == nil or at > free_at then full, free_at = limit, at end
end
if ARGV[2] ~= '' then
  local limit = tonumber(ARGV[2])
  if n >= limit then
    if limit == 0 then note('rpm', NEVER) else note('rpm', tonumber(minute[2 * (n - limit) + 2]) + MINUTE) end
  end
end
if ARGV[3] ~= '' then
  local limit = tonumber(ARGV[3])
  local day = redis.call('ZCOUNT', reqs, '(' .. ms(now - DAY), '+inf')
  if day >= limit then
    if limit == 0 then
      note('rpd', NEVER)
    else
      local leaving = redis.call('ZRANGEBYSCORE', reqs, '(' .. ms(now - DAY), '+inf', 'WITHSCORES',
        'LIMIT', day - limit, 1)
      note('rpd', tonumber(leaving[2]) + DAY)
    end
  end
end
if ARGV[4] ~= '' then
  local tpm = tonumber(ARGV[4])
  local used = 0
  for i = 1, #minute, 2 do used = used + tokens_of(minute[i]) end
  if used + tokens > tpm then
    local at = NEVER
    for i = 1, #minute, 2 do
      used = used - tokens_of(minute[i])
      if used + tokens <= tpm then
        at = tonumber(minute[i + 1]) + MINUTE
        break
      end
    end
    note('tpm', at)
  end
end
if full then
  if free_at == NEVER then return {'full', -1, full, ''} end
  return {'full', free_at, full, ''}
end
local k = redis.call('ZCOUNT', reqs, ms(now), ms(now))
while redis.call('ZADD', reqs, 'NX', ms(now), ms(now) .. '-' .. ms(k) .. ':' .. ms(tokens)) == 0 do
  k = k + 1
end
-- Every request in the set is older than a day once the model has been idle that long.
redis.call('PEXPIRE', reqs, DAY)
return {'granted', now, '', ''}
