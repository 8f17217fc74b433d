-- KEYS: the attempt's hash, its work stream. ARGV: worker, fence, lease (ms), stream entry id.
-- Extends the lease of the owner whose fencing token is current, and claims the stream entry
-- back to it (its idle time starts again, so no other worker reclaims it). A worker whose
-- token is stale is told who owns the attempt now; nothing changes. Tells the owner whether
-- the orchestrator asked it to stop the attempt.
-- Returns {'ok', lease_until_ms, stop} | {'lost', owner, fence}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'fence', 'worker', 'stop')
if h[1] ~= 'running' or h[2] ~= ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'lost', 1)
  return {'lost', h[3] or '', h[2] or '0'}
end
local lease_until = string.format('%d', now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'lease_until', lease_until, 'worker', ARGV[1])
redis.call('XCLAIM', KEYS[2], 'workers', ARGV[1], '0', ARGV[4], 'JUSTID')
return {'ok', lease_until, h[4] or ''}
