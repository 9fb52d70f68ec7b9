-- Creates a session in 'ai' unless one of that name exists (even a closed one).
-- KEYS[1] session hash   ARGV[1] now (epoch ms)   ARGV[2] ttl (s)   ARGV[3] display name ('' = none)
-- Returns 1 when created, 0 when the name is taken.
--
-- The record (infrastructure/sessions/record_log.py): the LAST key is the record stream and
-- the LAST two arguments are the session name and the record stream's MAXLEN, whatever
-- comes before them.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'ai', 'created_at', ARGV[1], 'updated_at', ARGV[1])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'display_name', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
-- >>> record: atomic with the write above
redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV], '*',
  'kind', 'session_created', 'session', ARGV[#ARGV - 1], 'ts', ARGV[1])
-- <<< record
return 1
