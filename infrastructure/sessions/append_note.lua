-- An agent's internal note on a session: kept in its own stream, never in the transcript a
-- customer reads.
-- KEYS[1] session hash   KEYS[2] notes (STREAM)   KEYS[3] the record stream (last)
-- ARGV[1] agent id   ARGV[2] content   ARGV[3] now (ms)   ARGV[4] max notes   ARGV[5] ttl (s)
-- ARGV[6] session name   ARGV[7] record MAXLEN (the last two: record_log.py)
-- Returns {'ok', id} | {'not_found'}
if not redis.call('HGET', KEYS[1], 'status') then
  return {'not_found'}
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*',
  'agent_id', ARGV[1], 'content', ARGV[2], 'ts', ARGV[3])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
-- >>> record: atomic with the write above
redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV], '*',
  'kind', 'note', 'session', ARGV[#ARGV - 1], 'ts', ARGV[3],
  'note_id', id, 'agent_id', ARGV[1], 'content', ARGV[2])
-- <<< record
return {'ok', id}
