-- KEYS: the attempt's hash, its work stream, the run's feed stream.
-- ARGV: worker, fence, stream entry id, outcome (JSON), feed entries kept (approx.), hash TTL (ms),
-- and optionally the worker's host and its last events (a JSON array, appended before the end).
-- Counts the attempt's end once, and only from the owner with the current fencing token: the
-- end is appended to the run's feed and the entry acknowledged, atomically. The same end
-- reported again (a retry after a lost answer, a duplicate delivery after failover) is a
-- duplicate; a stale owner's end is refused, and counted on the hash (`lost`).
-- Returns {'accepted'} | {'duplicate'} | {'lost', owner, fence}.
local h = redis.call('HMGET', KEYS[1], 'state', 'fence', 'worker', 'done_fence', 'task', 'attempt')
if h[1] == 'done' and h[4] == ARGV[2] then return {'duplicate'} end
if h[1] ~= 'running' or h[2] ~= ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'lost', 1)
  return {'lost', h[3] or '', h[2] or '0'}
end
redis.call('HSET', KEYS[1], 'state', 'done', 'done_fence', ARGV[2], 'outcome', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('XACK', KEYS[2], 'workers', ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
if ARGV[8] and ARGV[8] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'task', h[5], 'attempt', h[6], 'worker', ARGV[1],
    'fence', ARGV[2], 'host', ARGV[7], 'events', ARGV[8])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'task', h[5], 'attempt', h[6], 'worker', ARGV[1],
  'fence', ARGV[2], 'end', ARGV[4])
return {'accepted'}
