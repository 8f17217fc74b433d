-- KEYS: the namespace's work stream for the attempt's agent, the attempt's hash, the run's set of
-- open attempts (their hashes: what a cancel of a run whose orchestrator died must stop, even
-- attempts its store never recorded).
-- ARGV: run id, task id, attempt number, the job (JSON), the queue's name, that set's TTL (ms).
-- Queues an attempt once: enqueuing it again (an orchestrator that resumes) returns the entry
-- it already has. The workers' group is made by the first worker that reads (from entry 0, so
-- nothing queued before is missed). Returns the stream entry id.
local entry = redis.call('HGET', KEYS[2], 'entry')
if entry then return entry end
entry = redis.call('XADD', KEYS[1], '*', 'run', ARGV[1], 'task', ARGV[2], 'attempt', ARGV[3], 'job', ARGV[4])
redis.call('HSET', KEYS[2], 'state', 'queued', 'fence', '0', 'entry', entry, 'run', ARGV[1], 'task', ARGV[2],
  'attempt', ARGV[3], 'queue', ARGV[5])
redis.call('SADD', KEYS[3], KEYS[2])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return entry
