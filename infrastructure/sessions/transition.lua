-- One move of one session's state machine, checked and written atomically.
-- The Lua twin of transitions.apply_transition (its body is move() in lib.lua).
--
-- ARGV[1] key prefix   ARGV[2] session name   ARGV[3] requested status
-- ARGV[4] agent id ('' = an outside authority)   ARGV[5] escalation reason ('' = none)
-- ARGV[6] now (epoch ms)   ARGV[7] ttl (s)
-- ARGV[8] allowed current states, comma-separated ('' = any)
-- ARGV[9] '1': a move to waiting_agent goes to the front of the queue
--
-- Returns {'ok', field, value, ...} (the session after the move) or an error code:
-- {'not_found'} | {'held', holder} | {'illegal', current} | {'not_holder', holder}
init_keys(ARGV[1])
local now = ARGV[6]
local queued_at = ''
if ARGV[9] == '1' then
  queued_at = front_of_queue(now)
end
return move(ARGV[2], ARGV[3], ARGV[4], ARGV[5], now, tonumber(ARGV[7]), ARGV[8], queued_at)
