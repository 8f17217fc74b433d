-- KEYS: run hash, tasks hash, events stream, announcement channel
-- ARGV: [1] lease token ("" = none), [2] run doc ("" = unchanged), [3] run state, [4] maxlen,
--       [5] n tasks, [6] the rejection event to record if the write is refused,
--       [7] m expected states, [8] batch id ("" = none), then m (task id, state it must be in
--       now) pairs, then n (task id, doc) pairs, then the event docs.
-- A batch id seen last is a replay (the client lost the answer, not the write): nothing is
-- written twice. Long argument lists are handled in chunks (Lua's unpack has a limit). A
-- batch of up to 1000 tasks and events is at most 9 commands whatever its size: its events
-- share one stream entry `0-<last seq>` whose fields are the events' sequence numbers.
local CHUNK = 1000
local run, tasks, events = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', run) == 0 then return redis.error_reply('NORUN') end
local batch = ARGV[8]
if batch ~= '' and redis.call('HGET', run, 'batch') == batch then return -1 end
local function refuse(reply)
  local seq = redis.call('HINCRBY', run, 'seq', 1)
  redis.call('XADD', events, 'MAXLEN', '~', ARGV[4], '0-' .. seq, tostring(seq), ARGV[6])
  return redis.error_reply(reply)
end
local token = ARGV[1]
if token ~= '' then
  local held = redis.call('HGET', run, 'lease')
  if held and held ~= token then return refuse('FENCED ' .. held) end
end
local m = tonumber(ARGV[7])
local at = 9
for start = 0, m - 1, CHUNK do
  local stop = math.min(m - 1, start + CHUNK - 1)
  local ids = {}
  for k = start, stop do ids[#ids + 1] = ARGV[at + 2 * k] end
  local docs = redis.call('HMGET', tasks, unpack(ids))
  for k = start, stop do
    local want = ARGV[at + 2 * k + 1]
    local doc = docs[k - start + 1]
    local found = 'absent'
    if doc then found = cjson.decode(doc).state end
    if found ~= want then
      return refuse('CONFLICT ' .. ids[k - start + 1] .. ' ' .. want .. ' ' .. found)
    end
  end
end
local base = at + 2 * m
if ARGV[2] ~= '' then
  redis.call('HSET', run, 'doc', ARGV[2], 'state', ARGV[3], 'batch', batch)
elseif batch ~= '' then
  redis.call('HSET', run, 'batch', batch)
end
local n = tonumber(ARGV[5])
for start = 0, n - 1, CHUNK do
  local stop = math.min(n - 1, start + CHUNK - 1)
  local pairs = {}
  for k = start, stop do
    pairs[#pairs + 1] = ARGV[base + 2 * k]
    pairs[#pairs + 1] = ARGV[base + 2 * k + 1]
  end
  redis.call('HSET', tasks, unpack(pairs))
end
local first = base + 2 * n
local count = #ARGV - first + 1
if count <= 0 then return 0 end
local last = redis.call('HINCRBY', run, 'seq', count)
for start = 0, count - 1, CHUNK do
  local stop = math.min(count - 1, start + CHUNK - 1)
  local fields = {}
  for k = start, stop do
    fields[#fields + 1] = tostring(last - count + 1 + k)
    fields[#fields + 1] = ARGV[first + k]
  end
  redis.call('XADD', events, 'MAXLEN', '~', ARGV[4], '0-' .. (last - count + 1 + stop), unpack(fields))
end
-- Announce to live watchers: `<run_id> <last seq>` on the namespace's events channel.
redis.call('PUBLISH', KEYS[4], string.match(run, ':run:(.*)$') .. ' ' .. last)
return last
