-- A supervisor takes a chat another agent holds (the forced takeover), atomically: the
-- state stays agent_active, the holder changes (as a transfer). Neither the supervisor's
-- presence nor its capacity is checked: a supervisor steps in whatever its load. With an
-- expected holder, a chat that moved since the supervisor looked is refused.
--
-- ARGV[1] key prefix   ARGV[2] session name   ARGV[3] the supervisor   ARGV[4] now (ms)
-- ARGV[5] ttl (s)   ARGV[6] the holder expected ('' = whoever)
-- Returns {'ok', previous holder, field, value, ...} | {'not_found'}
-- | {'refused', status, holder} (the caller words why, as models.not_takeable_reason)
init_keys(ARGV[1])
local name, to, now, expected = ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local status, holder = status_and_holder(name)
if not status then
  return {'not_found'}
end
if status ~= 'agent_active' or holder == to or (expected ~= '' and holder ~= expected) then
  return {'refused', status, holder}
end
reassign(name, holder, to, now, tonumber(ARGV[5]), 'taken over from ' .. holder .. ' by ' .. to)
local state = state_of(name)
table.insert(state, 2, holder)
return state
