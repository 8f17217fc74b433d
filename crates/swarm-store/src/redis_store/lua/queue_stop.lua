-- KEYS: the attempt's hash, its work stream. ARGV: how ('terminate' | 'kill'), hash TTL (ms).
-- The orchestrator stops an attempt. One no worker runs (still queued, or its owner's lease
-- ran out) is dropped here: it is done, its entry acknowledged and deleted, and no worker's
-- end for it counts any more. One a live worker runs is marked: its owner reads the request
-- with its next renewal or events and stops the agent.
-- Returns {'dropped'} | {'asked'} | {'done'} (it had ended; nothing to stop).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'entry')
if not h[1] or h[1] == 'done' then return {'done'} end
if h[1] == 'queued' or tonumber(h[2] or '0') <= now then
  redis.call('HSET', KEYS[1], 'state', 'done', 'done_fence', '-1', 'stop', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('XACK', KEYS[2], 'workers', h[3])
  redis.call('XDEL', KEYS[2], h[3])
  return {'dropped'}
end
redis.call('HSET', KEYS[1], 'stop', ARGV[1])
return {'asked'}
