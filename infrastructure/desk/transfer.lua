-- A chat handed from the agent holding it to another agent, atomically: the target must be
-- online (not away, not offline) and under capacity; two transfers of one chat at once: one
-- wins, the other finds the chat is no longer its caller's.
--
-- ARGV[1] key prefix   ARGV[2] session name   ARGV[3] from (the holder)   ARGV[4] to
-- ARGV[5] now (ms)   ARGV[6] capacity   ARGV[7] ttl (s)   ARGV[8] the note ('' = none)
-- Returns {'ok', field, value, ...} | {'not_found'} | {'not_holder', holder}
-- | {'unavailable', presence} | {'full', chats}
init_keys(ARGV[1])
local name, from, to, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local status, holder = status_and_holder(name)
if not status then
  return {'not_found'}
end
if status ~= 'agent_active' or holder ~= from then
  return {'not_holder', holder}
end
local seen = presence(to, now)
if seen ~= 'online' then
  return {'unavailable', seen}
end
local chats = tonumber(redis.call('HGET', K.load, to) or '0')
if chats >= tonumber(ARGV[6]) then
  return {'full', tostring(chats)}
end
reassign(name, from, to, now, tonumber(ARGV[7]), 'transfer from ' .. from .. ': ' .. ARGV[8])
return state_of(name)
