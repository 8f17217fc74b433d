-- KEYS: run hash. ARGV: token, ttl ms, the dead holder to take over from ("" = none). The
-- server's clock decides expiry.
-- A run that is gone (a flushed or emptied server) is not brought back as a bare lease.
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NORUN') end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('HGET', KEYS[1], 'lease')
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
if held and held ~= ARGV[1] and until_ms > now and held ~= ARGV[3] then
  return redis.error_reply('FENCED ' .. held)
end
redis.call('HSET', KEYS[1], 'lease', ARGV[1], 'lease_until', now + tonumber(ARGV[2]))
return now
