-- KEYS: the namespace's workers hash, its heartbeats hash. ARGV: worker name, its info (JSON).
-- A worker says it is alive: its info, and the moment (server clock, ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], string.format('%d', now))
return now
