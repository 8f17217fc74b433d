-- KEYS: the attempt's hash, the run's feed stream.
-- ARGV: worker, fence, events (JSON array), feed entries kept (approx.), host.
-- Appends what the attempt's owner says to the run's feed, if its fencing token is current; a
-- stale owner's write is refused and counted on the hash (`lost`). Tells the owner whether the
-- orchestrator asked it to stop the attempt.
-- Returns {'ok', '', stop} (stop: '' | 'terminate' | 'kill') | {'lost', owner, fence}.
local h = redis.call('HMGET', KEYS[1], 'state', 'fence', 'worker', 'task', 'attempt', 'stop')
if h[1] ~= 'running' or h[2] ~= ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'lost', 1)
  return {'lost', h[3] or '', h[2] or '0'}
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'task', h[4], 'attempt', h[5], 'worker', ARGV[1],
  'fence', ARGV[2], 'host', ARGV[5], 'events', ARGV[3])
return {'ok', '', h[6] or ''}
