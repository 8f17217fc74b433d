-- KEYS: entries hash, changes stream, seq counter, [run hash, run events stream]
-- The run event is an entry of its own, `0-<seq>` with the field `<seq>`, as `apply` writes them.
-- ARGV: key, expected version ("" = any), entry doc ("" = delete), change doc, placeholder,
--       changes maxlen, run event doc ("" = none), events maxlen
local entries, changes, counter = KEYS[1], KEYS[2], KEYS[3]
local key, placeholder = ARGV[1], ARGV[5]
local function fill(doc, field, n)
  local marker = '"' .. field .. '":' .. placeholder
  local s, e = string.find(doc, marker, 1, true)
  return string.sub(doc, 1, s - 1) .. '"' .. field .. '":' .. string.format('%d', n) .. string.sub(doc, e + 1)
end
local cur = redis.call('HGET', entries, key)
local found = 0
if cur then found = tonumber(string.match(cur, '"version":(%d+)')) end
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= found then
  return redis.error_reply('CONFLICT ' .. string.format('%d', found))
end
local version
if ARGV[3] == '' then
  if not cur then return 0 end
  redis.call('HDEL', entries, key)
  version = found
else
  version = found + 1
  redis.call('HSET', entries, key, fill(ARGV[3], 'version', version))
end
local seq = redis.call('INCR', counter)
local change = fill(fill(ARGV[4], 'seq', seq), 'version', version)
redis.call('XADD', changes, 'MAXLEN', '~', ARGV[6], '0-' .. seq, 'doc', change)
if #KEYS == 5 and ARGV[7] ~= '' and redis.call('EXISTS', KEYS[4]) == 1 then
  local n = redis.call('HINCRBY', KEYS[4], 'seq', 1)
  local id = string.format('%d', n)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '0-' .. id, id, fill(ARGV[7], 'version', version))
end
return version
