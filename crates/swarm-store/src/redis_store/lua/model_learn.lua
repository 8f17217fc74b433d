-- KEYS: the model's learned-limits hash. ARGV: rpm, rpd ("" = not said now), source.
-- Keeps what a provider said of its limits; a limit not said now keeps its earlier value.
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'rpm', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'rpd', ARGV[2]) end
redis.call('HSET', KEYS[1], 'source', ARGV[3], 'at', ms(server_now()))
return 1
