-- KEYS: the attempt's hash, its work stream. ARGV: worker, lease (ms), stream entry id.
-- Makes `worker` the attempt's owner with a new fencing token, unless it is finished (the
-- entry is acknowledged and dropped) or another worker holds a lease that has not run out on
-- the server's clock (left to that worker: its renewal claims the entry back).
-- Returns {'ok', fence, lease_until_ms} | {'done'} | {'held', owner, lease_until_ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'worker', 'fence')
local state, held, owner = h[1], tonumber(h[2] or '0'), h[3]
if not state or state == 'done' then
  redis.call('XACK', KEYS[2], 'workers', ARGV[3])
  redis.call('XDEL', KEYS[2], ARGV[3])
  return {'done'}
end
if state == 'running' and held > now and owner ~= ARGV[1] then
  return {'held', owner, string.format('%d', held)}
end
local fence = tostring(tonumber(h[4] or '0') + 1)
local lease_until = string.format('%d', now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[1], 'lease_until', lease_until, 'fence', fence)
return {'ok', fence, lease_until}
