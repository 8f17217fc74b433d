-- KEYS: the work stream, then each entry's attempt hash. ARGV: worker, lease (ms), then each
-- entry's stream id (in the order of the hashes).
-- Makes `worker` each attempt's owner with a new fencing token, unless it is finished (the
-- entry is acknowledged and dropped) or another worker holds a lease that has not run out on
-- the server's clock (left to that worker: its renewal claims the entry back).
-- Returns, per entry, {'ok', fence, lease_until_ms} | {'done'} | {'held', owner, lease_until_ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_until = string.format('%d', now + tonumber(ARGV[2]))
local out = {}
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  local h = redis.call('HMGET', KEYS[i], 'state', 'lease_until', 'worker', 'fence')
  local state, held, owner = h[1], tonumber(h[2] or '0'), h[3]
  if not state or state == 'done' then
    redis.call('XACK', KEYS[1], 'workers', id)
    redis.call('XDEL', KEYS[1], id)
    out[#out + 1] = {'done'}
  elseif state == 'running' and held > now and owner ~= ARGV[1] then
    out[#out + 1] = {'held', owner, string.format('%d', held)}
  else
    local fence = tostring(tonumber(h[4] or '0') + 1)
    redis.call('HSET', KEYS[i], 'state', 'running', 'worker', ARGV[1], 'lease_until', lease_until, 'fence', fence)
    out[#out + 1] = {'ok', fence, lease_until}
  end
end
return out
