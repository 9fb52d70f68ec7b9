redis.replicate_commands() -- Redis 6: replicate effects (the default from Redis 7)
-- Shared by every script that moves a session (prepended to it when it is loaded):
-- the key layout and the effects of a move, written once. See redis_store.py.
--
-- P is the key prefix (ARGV of the script that calls init_keys). RECORD_MAXLEN is filled in
-- when the script is loaded (redis_store.lua_script): the record stream's cap.
local P
local K = {}
local RECORD_MAXLEN = '__RECORD_MAXLEN__'

local function init_keys(prefix)
  P = prefix
  K.queue = P .. 'queue:waiting'
  K.held = P .. 'held'            -- HASH session name -> holding agent
  K.load = P .. 'load'            -- HASH agent id -> chats held
  K.waits = P .. 'waits'          -- LIST recent waits before an agent (ms), newest first
  K.agents = P .. 'agents'        -- SET agents that have been seen (presence, assignment)
  K.record = P .. 'record'        -- STREAM every change of every session (record_log.py)
end

local function sess_key(name) return P .. 'sess:{' .. name .. '}' end
local function msgs_key(name) return P .. 'msgs:{' .. name .. '}' end
local function agent_key(agent) return P .. 'agent:' .. agent end
local function conn_key(agent) return P .. 'conn:' .. agent end
local function cconn_key(name) return P .. 'cconn:{' .. name .. '}' end

local RECENT_WAITS = 50

-- What others see of an agent: 'offline' unless it has a live stream somewhere (an entry
-- in its conn ZSET, scored by when it expires) and has not said it is offline.
local function presence(agent, now)
  local said = redis.call('HGET', agent_key(agent), 'status') or 'online'
  if said == 'offline' then return 'offline' end
  if redis.call('ZCOUNT', conn_key(agent), '(' .. now, '+inf') == 0 then return 'offline' end
  return said
end

-- The state machine's table (the Lua twin of models.ALLOWED_TRANSITIONS).
local ALLOWED = {
  ai = {waiting_agent = true, closed = true},
  waiting_agent = {agent_active = true, ai = true, closed = true, abandoned = true},
  agent_active = {ai = true, closed = true, waiting_agent = true},
  abandoned = {ai = true, waiting_agent = true, closed = true},
}

-- A session's status (false: no such session) and its holder ('' = none).
local function status_and_holder(name)
  local sess = sess_key(name)
  local status = redis.call('HGET', sess, 'status')
  if not status then
    return false, ''
  end
  return status, redis.call('HGET', sess, 'agent_id') or ''
end

local function state_of(name)
  local state = redis.call('HGETALL', sess_key(name))
  table.insert(state, 1, 'ok')
  return state
end

-- Checks a move in the order of transitions.apply_transition. Returns nil when it is
-- legal, else the error reply; 'noop' for a repeated takeover by the holder.
local function check_move(current, holder, requested, agent, only_from)
  if current == 'agent_active' and requested == 'agent_active' then
    if agent == holder then return 'noop' end
    return {'held', holder}
  end
  if only_from ~= '' and not string.find(',' .. only_from .. ',', ',' .. current .. ',', 1, true) then
    return {'illegal', current}
  end
  if not (ALLOWED[current] and ALLOWED[current][requested]) then
    return {'illegal', current}
  end
  if current == 'agent_active' and agent ~= '' and agent ~= holder then
    return {'not_holder', holder}
  end
  return nil
end

-- What a legal move does (transitions.apply_transition's effects, and the indexes).
-- queued_at: the queue score for a move to waiting_agent ('' = now).
local function apply_move(name, current, holder, requested, agent, reason, now, ttl, queued_at)
  local sess = sess_key(name)
  redis.call('HSET', sess, 'status', requested, 'updated_at', now)
  if current == 'agent_active' and holder ~= '' then
    if redis.call('HINCRBY', K.load, holder, -1) <= 0 then
      redis.call('HDEL', K.load, holder)
    end
    redis.call('HDEL', K.held, name)
  end
  if requested == 'waiting_agent' then
    local score = (queued_at ~= '' and queued_at) or now
    redis.call('HSET', sess, 'waiting_since', score)
    redis.call('HDEL', sess, 'agent_id', 'customer_gone_since')
    if current ~= 'agent_active' then
      redis.call('HSET', sess, 'unread', 0)
      if reason ~= '' then
        redis.call('HSET', sess, 'escalation_reason', reason)
      else
        redis.call('HDEL', sess, 'escalation_reason')
      end
    end
    redis.call('ZADD', K.queue, score, name)
  elseif requested == 'agent_active' then
    local since = redis.call('HGET', sess, 'waiting_since')
    if since then
      redis.call('LPUSH', K.waits, tonumber(now) - tonumber(since))
      redis.call('LTRIM', K.waits, 0, RECENT_WAITS - 1)
    end
    redis.call('HSET', sess, 'agent_id', agent, 'last_activity_at', now)
    redis.call('HDEL', sess, 'waiting_since', 'customer_gone_since')
    redis.call('ZREM', K.queue, name)
    redis.call('HSET', K.held, name, agent)
    redis.call('HINCRBY', K.load, agent, 1)
  elseif requested == 'ai' then
    redis.call('HDEL', sess, 'agent_id', 'waiting_since', 'escalation_reason', 'customer_gone_since')
    redis.call('ZREM', K.queue, name)
  else -- closed, abandoned
    redis.call('HDEL', sess, 'agent_id', 'waiting_since', 'customer_gone_since')
    redis.call('ZREM', K.queue, name)
  end
  redis.call('EXPIRE', sess, ttl)
  redis.call('EXPIRE', msgs_key(name), ttl) -- a no-op while the transcript is empty
  -- The record, atomic with the move. agent_id: the holder after the move, else the agent
  -- who held it before (so that the record knows whose handling a release ends).
  redis.call('XADD', K.record, 'MAXLEN', '~', RECORD_MAXLEN, '*',
    'kind', 'status', 'session', name, 'ts', now, 'status', requested, 'previous', current,
    'agent_id', (requested == 'agent_active') and agent or holder, 'reason', reason)
end

-- A held chat to another agent (a transfer, a supervisor's takeover): the state stays
-- agent_active, the holder, the indexes and the loads change, and the record says who
-- holds it now and why (reason).
local function reassign(name, from, to, now, ttl, reason)
  local sess = sess_key(name)
  redis.call('HSET', sess, 'agent_id', to, 'updated_at', now, 'last_activity_at', now)
  redis.call('HSET', K.held, name, to)
  if redis.call('HINCRBY', K.load, from, -1) <= 0 then
    redis.call('HDEL', K.load, from)
  end
  redis.call('HINCRBY', K.load, to, 1)
  redis.call('HSET', agent_key(to), 'last_assigned_at', now)
  redis.call('EXPIRE', sess, ttl)
  redis.call('XADD', K.record, 'MAXLEN', '~', RECORD_MAXLEN, '*',
    'kind', 'status', 'session', name, 'ts', now, 'status', 'agent_active',
    'previous', 'agent_active', 'agent_id', to, 'reason', reason)
end

-- One checked move; returns the reply of transition.lua.
local function move(name, requested, agent, reason, now, ttl, only_from, queued_at)
  local current, holder = status_and_holder(name)
  if not current then
    return {'not_found'}
  end
  local refused = check_move(current, holder, requested, agent, only_from)
  if refused == 'noop' then
    return state_of(name)
  elseif refused then
    return refused
  end
  apply_move(name, current, holder, requested, agent, reason, now, ttl, queued_at)
  return state_of(name)
end

-- The queue score that puts a session ahead of everyone waiting now.
local function front_of_queue(now)
  local head = redis.call('ZRANGE', K.queue, 0, 0, 'WITHSCORES')
  if head[2] and tonumber(head[2]) <= tonumber(now) then
    return tostring(tonumber(head[2]) - 1)
  end
  return now
end
