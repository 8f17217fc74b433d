-- KEYS: run hash, tasks hash, the namespace's runs index (sorted set), the namespace's meta hash
-- ARGV: [1] run id, [2] run doc, [3] run state, [4] start (ms), [5] schema version, then
--       (task id, doc) pairs
-- A run id is never reused; a namespace marked by a newer schema is refused. Long task lists
-- are written in chunks (Lua's unpack has a limit).
local CHUNK = 1000
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
local found = redis.call('HGET', KEYS[4], 'schema_version')
if found and tonumber(string.match(found, '^(%d+)')) > tonumber(ARGV[5]) then
  return redis.error_reply('SCHEMA ' .. found)
end
redis.call('HSETNX', KEYS[4], 'schema_version', ARGV[5])
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'state', ARGV[3], 'cancel', '0', 'seq', '0')
local n = (#ARGV - 5) / 2
for start = 0, n - 1, CHUNK do
  local stop = math.min(n - 1, start + CHUNK - 1)
  local pairs = {}
  for k = start, stop do
    pairs[#pairs + 1] = ARGV[6 + 2 * k]
    pairs[#pairs + 1] = ARGV[7 + 2 * k]
  end
  redis.call('HSET', KEYS[2], unpack(pairs))
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
