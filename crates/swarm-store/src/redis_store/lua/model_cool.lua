-- KEYS: the model's cooldown hash. ARGV: until (ms, server clock), reason, kind (cooling|disabled).
-- A live cooldown is replaced only by a longer one; the hash expires with the cooldown.
-- Returns 1 if this cooldown is now in place, 0 if a longer one was kept or it is over already.
local function ms(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = tonumber(ARGV[1])
if until_ms <= now then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'until') or '0') >= until_ms then return 0 end
redis.call('HSET', KEYS[1], 'until', ms(until_ms), 'reason', ARGV[2], 'kind', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ms(until_ms))
return 1
