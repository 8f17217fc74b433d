-- KEYS: per model, its cooldown hash and its requests sorted set. Reads only.
-- Returns, all as strings: the server's now (ms), then per model: cooling until (0 = not
-- cooling), reason, requests and tokens of the last minute, requests and tokens of the last day,
-- kind ('' for a cooldown stored before kinds were).
local MINUTE, DAY = 60000, 86400000
local function ms(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {ms(now)}
for i = 1, #KEYS, 2 do
  local until_ms = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  local reason, kind = '', ''
  if until_ms > now then
    reason = redis.call('HGET', KEYS[i], 'reason') or ''
    kind = redis.call('HGET', KEYS[i], 'kind') or ''
  else
    until_ms = 0
  end
  local mr, mt, dr, dt = 0, 0, 0, 0
  local day = redis.call('ZRANGEBYSCORE', KEYS[i + 1], '(' .. ms(now - DAY), '+inf', 'WITHSCORES')
  for j = 1, #day, 2 do
    local tokens = tonumber(string.match(day[j], ':(%d+)$')) or 0
    dr, dt = dr + 1, dt + tokens
    if tonumber(day[j + 1]) > now - MINUTE then mr, mt = mr + 1, mt + tokens end
  end
  for _, v in ipairs({ms(until_ms), reason, ms(mr), ms(mt), ms(dr), ms(dt), kind}) do out[#out + 1] = v end
end
return out
