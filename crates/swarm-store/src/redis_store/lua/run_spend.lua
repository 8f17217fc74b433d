-- KEYS: the run's spend hash. ARGV: USD and tokens to add (0: only read), the hash's TTL (ms).
-- What every model gateway of the run (the orchestrator's, each worker's) spent, one tally,
-- and the run's budget its orchestrator set there.
-- Returns {usd, tokens, budget_usd, budget_tokens} after the addition ('' for no budget).
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBYFLOAT', KEYS[1], 'usd', ARGV[1]) end
if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[2]) end
if tonumber(ARGV[1]) > 0 or tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local h = redis.call('HMGET', KEYS[1], 'usd', 'tokens', 'budget_usd', 'budget_tokens')
return {h[1] or '0', h[2] or '0', h[3] or '', h[4] or ''}
