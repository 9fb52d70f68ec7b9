-- What the desk checks every few seconds, on any replica (atomic, so replicas running it
-- at once do each thing once):
--   * an agent's presence others see changed (a replica crashed: its entries expired);
--   * an agent offline for the grace period: its chats go back to the front of the queue;
--   * a waiting customer with no live stream for the abandon period: 'abandoned';
--   * an agent chat with no message for the idle period: 'closed'.
--
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] agent grace (ms)   ARGV[4] abandon (ms)
-- ARGV[5] idle close (ms)   ARGV[6] ttl (s)
-- Returns {kind, a, b, ...} in threes: {'presence', agent, status}, {'returned', session,
-- agent}, {'abandoned', session, ''}, {'idle_closed', session, agent}.
init_keys(ARGV[1])
local now, grace, abandon, idle = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local t = tonumber(now)
local out = {}
local function emit(kind, a, b)
  out[#out + 1] = kind
  out[#out + 1] = a
  out[#out + 1] = b
end

-- Who holds what, once.
local held = redis.call('HGETALL', K.held)
local holders = {}
for i = 1, #held, 2 do
  local list = holders[held[i + 1]] or {}
  list[#list + 1] = held[i]
  holders[held[i + 1]] = list
end

for _, agent in ipairs(redis.call('SMEMBERS', K.agents)) do
  local key = agent_key(agent)
  local seen = presence(agent, now)
  if redis.call('HGET', key, 'seen') ~= seen then
    redis.call('HSET', key, 'seen', seen)
    emit('presence', agent, seen)
  end
  if seen == 'offline' and holders[agent] then
    local gone = redis.call('HGET', key, 'gone_since')
    if not gone then
      redis.call('HSET', key, 'gone_since', now)
      gone = now
    end
    if t - tonumber(gone) >= grace then
      -- All ahead of everyone waiting, in the order they were held.
      local names = holders[agent]
      local front = tonumber(front_of_queue(now)) - #names
      for i, name in ipairs(names) do
        if redis.call('HGET', sess_key(name), 'status') == 'agent_active' then
          apply_move(name, 'agent_active', agent, 'waiting_agent', '', '', now, ttl,
            tostring(front + i))
          emit('returned', name, agent)
        end
      end
      holders[agent] = nil
      redis.call('HDEL', key, 'gone_since')
    end
  elseif seen ~= 'offline' then
    redis.call('HDEL', key, 'gone_since')
  end
end

for _, name in ipairs(redis.call('ZRANGE', K.queue, 0, -1)) do
  local sess = sess_key(name)
  if redis.call('ZCOUNT', cconn_key(name), '(' .. now, '+inf') > 0 then
    redis.call('HDEL', sess, 'customer_gone_since')
  elseif redis.call('HGET', sess, 'status') == 'waiting_agent' then
    local gone = redis.call('HGET', sess, 'customer_gone_since')
    if not gone then
      redis.call('HSET', sess, 'customer_gone_since', now)
      gone = now
    end
    if t - tonumber(gone) >= abandon then
      apply_move(name, 'waiting_agent', '', 'abandoned', '', '', now, ttl, '')
      emit('abandoned', name, '')
    end
  end
end

for agent, names in pairs(holders) do
  for _, name in ipairs(names) do
    local sess = sess_key(name)
    local last = redis.call('HGET', sess, 'last_activity_at')
    if redis.call('HGET', sess, 'status') == 'agent_active' and last
        and t - tonumber(last) >= idle then
      apply_move(name, 'agent_active', agent, 'closed', '', '', now, ttl, '')
      emit('idle_closed', name, agent)
    end
  end
end
return out
