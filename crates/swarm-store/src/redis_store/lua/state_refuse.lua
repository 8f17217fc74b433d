-- KEYS: changes stream, seq counter
-- ARGV: change doc (with the seq placeholder), placeholder, changes maxlen
-- A refused write leaves only its change-feed entry, under the namespace's next seq.
local marker = '"seq":' .. ARGV[2]
local seq = redis.call('INCR', KEYS[2])
local s, e = string.find(ARGV[1], marker, 1, true)
local change = string.sub(ARGV[1], 1, s - 1) .. '"seq":' .. string.format('%d', seq) .. string.sub(ARGV[1], e + 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. seq, 'doc', change)
return seq
