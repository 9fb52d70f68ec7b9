-- Appends one message to a session's transcript (a capped STREAM) and refreshes the TTLs.
-- An agent message is accepted only from the agent holding the session, checked
-- in the same step as the write so that a release cannot slip in between.
--
-- KEYS[1] session hash   KEYS[2] transcript (STREAM)
-- ARGV[1] sender role   ARGV[2] sender id ('' = none)   ARGV[3] content
-- ARGV[4] message timestamp (epoch ms)   ARGV[5] max messages   ARGV[6] ttl (s)
-- ARGV[7] now (epoch ms)   ARGV[8] the attachment, as JSON ('' = none)
-- Returns {'ok', id} | {'not_found'} | {'not_holder', holder} | {'closed'}
-- (a file is never added to a closed chat: checked here, atomic with the write)
--
-- The record (infrastructure/sessions/record_log.py): the LAST key is the record stream and
-- the LAST two arguments are the session name and the record stream's MAXLEN, whatever
-- comes before them.
local sess, msgs = KEYS[1], KEYS[2]
local sender, sender_id = ARGV[1], ARGV[2]
local ttl = tonumber(ARGV[6])

local current = redis.call('HGET', sess, 'status')
if not current then
  return {'not_found'}
end
local attachment = ARGV[8]
if attachment ~= '' and current == 'closed' then
  return {'closed'}
end
if sender == 'agent' then
  local holder = redis.call('HGET', sess, 'agent_id') or ''
  if current ~= 'agent_active' or sender_id ~= holder then
    return {'not_holder', holder}
  end
end

if sender == 'customer' then
  if current == 'waiting_agent' or current == 'agent_active' then
    redis.call('HINCRBY', sess, 'unread', 1)
  end
  redis.call('HSETNX', sess, 'first_message', string.sub(ARGV[3], 1, 200))
elseif sender == 'agent' then
  redis.call('HSET', sess, 'unread', 0)
end
redis.call('HSET', sess, 'last_activity_at', ARGV[7])

-- exact MAXLEN (not '~'): the transcript keeps exactly as many as the memory store does
local fields = {'sender', sender, 'sender_id', sender_id, 'content', ARGV[3], 'ts', ARGV[4]}
if attachment ~= '' then
  fields[#fields + 1] = 'attachment'
  fields[#fields + 1] = attachment
end
local id = redis.call('XADD', msgs, 'MAXLEN', ARGV[5], '*', unpack(fields))
redis.call('EXPIRE', msgs, ttl)
redis.call('EXPIRE', sess, ttl)
-- >>> record: atomic with the write above
local entry = {'kind', 'message', 'session', ARGV[#ARGV - 1], 'ts', ARGV[4],
  'message_id', id, 'sender', sender, 'sender_id', sender_id, 'content', ARGV[3]}
if attachment ~= '' then
  entry[#entry + 1] = 'attachment'
  entry[#entry + 1] = attachment
end
redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV], '*', unpack(entry))
-- <<< record
return {'ok', id}
