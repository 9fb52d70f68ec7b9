-- One move of one session's state machine, checked and written atomically.
-- The Lua twin of transitions.apply_transition: same checks, same order, same effects.
--
-- KEYS[1] session hash   KEYS[2] waiting queue (ZSET)   KEYS[3] transcript (STREAM)
-- KEYS[4] held sessions (HASH session name -> agent id)
-- ARGV[1] requested status   ARGV[2] agent id ('' = an outside authority)
-- ARGV[3] escalation reason ('' = none)   ARGV[4] now (epoch ms)   ARGV[5] ttl (s)
-- ARGV[6] session name (the queue member)   ARGV[7] allowed current states, comma-separated ('' = any)
--
-- Returns {'ok', field, value, ...} (the session after the move) or an error code:
-- {'not_found'} | {'held', holder} | {'illegal', current} | {'not_holder', holder}
--
-- The record (infrastructure/sessions/record_log.py): the LAST key is the record stream and
-- the LAST two arguments are the session name and the record stream's MAXLEN, whatever
-- comes before them.
local sess, queue, msgs, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local requested, agent, reason = ARGV[1], ARGV[2], ARGV[3]
local now, ttl, name, only_from = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]

local current = redis.call('HGET', sess, 'status')
if not current then
  return {'not_found'}
end
local holder = redis.call('HGET', sess, 'agent_id') or ''

if current == 'agent_active' and requested == 'agent_active' then
  if agent == holder then
    -- the holder taking over again: a no-op that succeeds
    local state = redis.call('HGETALL', sess)
    table.insert(state, 1, 'ok')
    return state
  end
  return {'held', holder}
end

if only_from ~= '' and not string.find(',' .. only_from .. ',', ',' .. current .. ',', 1, true) then
  return {'illegal', current}
end

local allowed = {
  ai = {waiting_agent = true, closed = true},
  waiting_agent = {agent_active = true, ai = true, closed = true},
  agent_active = {ai = true, closed = true},
}
if not (allowed[current] and allowed[current][requested]) then
  return {'illegal', current}
end

if current == 'agent_active' and agent ~= '' and agent ~= holder then
  return {'not_holder', holder}
end

redis.call('HSET', sess, 'status', requested, 'updated_at', now)
if requested == 'waiting_agent' then
  redis.call('HSET', sess, 'waiting_since', now)
  redis.call('HDEL', sess, 'agent_id')
  if reason ~= '' then
    redis.call('HSET', sess, 'escalation_reason', reason)
  else
    redis.call('HDEL', sess, 'escalation_reason')
  end
  redis.call('ZADD', queue, now, name)
elseif requested == 'agent_active' then
  redis.call('HSET', sess, 'agent_id', agent)
  redis.call('HDEL', sess, 'waiting_since')
  redis.call('ZREM', queue, name)
  redis.call('HSET', held, name, agent)
elseif requested == 'ai' then
  redis.call('HDEL', sess, 'agent_id', 'waiting_since', 'escalation_reason')
  redis.call('ZREM', queue, name)
  redis.call('HDEL', held, name)
else -- closed
  redis.call('HDEL', sess, 'agent_id', 'waiting_since')
  redis.call('ZREM', queue, name)
  redis.call('HDEL', held, name)
end

redis.call('EXPIRE', sess, ttl)
redis.call('EXPIRE', msgs, ttl) -- a no-op while the transcript is empty
-- >>> record: atomic with the write above. agent_id: the holder after the move, else the
-- agent who held it before (so that the record knows whose handling a release ends)
redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV], '*',
  'kind', 'status', 'session', ARGV[#ARGV - 1], 'ts', now,
  'status', requested, 'previous', current,
  'agent_id', (requested == 'agent_active') and agent or holder, 'reason', reason)
-- <<< record
local state = redis.call('HGETALL', sess)
table.insert(state, 1, 'ok')
return state
