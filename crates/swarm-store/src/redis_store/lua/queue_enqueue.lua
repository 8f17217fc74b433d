-- KEYS: the namespace's work stream for the attempt's agent, the attempt's hash, the run's hash
-- of each task's last attempt queued (what is stopped when the run's orchestrator died, even an
-- attempt it never recorded, and what a resumed run numbers its attempts past).
-- ARGV: run id, task id, attempt number, the job (JSON), the queue's name, that hash's TTL (ms).
-- Queues an attempt once: enqueuing it again (an orchestrator that resumes) returns the entry
-- it already has. The workers' group is made by the first worker that reads (from entry 0, so
-- nothing queued before is missed). Returns the stream entry id.
local entry = redis.call('HGET', KEYS[2], 'entry')
if entry then return entry end
entry = redis.call('XADD', KEYS[1], '*', 'run', ARGV[1], 'task', ARGV[2], 'attempt', ARGV[3], 'job', ARGV[4])
redis.call('HSET', KEYS[2], 'state', 'queued', 'fence', '0', 'entry', entry, 'run', ARGV[1], 'task', ARGV[2],
  'attempt', ARGV[3], 'queue', ARGV[5])
-- A task's attempts are queued in order, each once: the last one queued is the highest. The TTL
-- is set with each task's first attempt.
if redis.call('HSET', KEYS[3], ARGV[2], ARGV[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[6]) end
return entry
