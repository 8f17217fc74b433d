-- KEYS: the attempt's hash, its work stream. ARGV: worker, fence, stream entry id.
-- A draining worker hands an attempt back: if it still owns it, the entry is queued afresh
-- (any worker may take it at once, with a new fencing token) and the old one acknowledged.
-- Returns {'ok', new entry id} | {'lost', owner, fence}.
local h = redis.call('HMGET', KEYS[1], 'state', 'fence', 'worker')
if h[1] ~= 'running' or h[2] ~= ARGV[2] then
  return {'lost', h[3] or '', h[2] or '0'}
end
local old = redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3])
if #old == 0 then return {'lost', h[3] or '', h[2] or '0'} end
local entry = redis.call('XADD', KEYS[2], '*', unpack(old[1][2]))
redis.call('XACK', KEYS[2], 'workers', ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'queued', 'entry', entry, 'worker', '', 'lease_until', '0')
return {'ok', entry}
