-- The customer's rating of a closed chat, given once.
-- KEYS[1] session hash   ARGV[1] score (1-5)   ARGV[2] comment ('' = none)   ARGV[3] now (ms)
-- Returns {'ok', field, value, ...} | {'not_found'} | {'not_closed', status} | {'rated'}
--
-- The record (infrastructure/sessions/record_log.py): the LAST key is the record stream and
-- the LAST two arguments are the session name and the record stream's MAXLEN.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then
  return {'not_found'}
end
if current ~= 'closed' then
  return {'not_closed', current}
end
if redis.call('HEXISTS', KEYS[1], 'rating') == 1 then
  return {'rated'}
end
redis.call('HSET', KEYS[1], 'rating', ARGV[1], 'rated_at', ARGV[3])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'rating_comment', ARGV[2])
end
-- >>> record: atomic with the write above
redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV], '*',
  'kind', 'rating', 'session', ARGV[#ARGV - 1], 'ts', ARGV[3],
  'score', ARGV[1], 'comment', ARGV[2])
-- <<< record
local state = redis.call('HGETALL', KEYS[1])
table.insert(state, 1, 'ok')
return state
