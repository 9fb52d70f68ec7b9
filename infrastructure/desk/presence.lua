-- Presence of agents and customers: a live stream on a replica is an entry in a ZSET
-- scored by when it expires (the replica refreshes it while the stream is open, so a
-- crashed replica's entries expire by themselves).
--
-- ARGV[1] key prefix   ARGV[2] op: 'enter' | 'leave' | 'say' | 'read'
-- ARGV[3] kind: 'agent' | 'customer'
-- ARGV[4] replica id   ARGV[5] now (ms)   ARGV[6] expires at (ms)   ARGV[7] status ('say')
-- ARGV[8..] ids (agent ids or session names)
-- Returns {agent, status, ...}: agents whose presence others see has changed; for
-- 'read', {agent, status, chats, ...} for every agent seen and every id given.
init_keys(ARGV[1])
local op, kind, replica, now, expires = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if op == 'read' then
  local ids = {}
  for _, id in ipairs(redis.call('SMEMBERS', K.agents)) do ids[id] = true end
  for i = 8, #ARGV do ids[ARGV[i]] = true end
  local out = {}
  for id in pairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = presence(id, now)
    out[#out + 1] = redis.call('HGET', K.load, id) or '0'
  end
  return out
end
local changed = {}
-- The key goes with its newest entry (entries are scored; this only collects garbage).
local function keep_until(key)
  local left = tonumber(expires) - tonumber(now)
  if redis.call('PTTL', key) < left then
    redis.call('PEXPIRE', key, left)
  end
end
for i = 8, #ARGV do
  local id = ARGV[i]
  if kind == 'customer' then
    local key = cconn_key(id)
    if op == 'enter' then
      redis.call('ZADD', key, expires, replica)
      keep_until(key)
      redis.call('HDEL', sess_key(id), 'customer_gone_since')
    else
      redis.call('ZREM', key, replica)
    end
  else
    local key = conn_key(id)
    redis.call('SADD', K.agents, id)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if op == 'enter' then
      redis.call('ZADD', key, expires, replica)
      keep_until(key)
    elseif op == 'leave' then
      redis.call('ZREM', key, replica)
    else
      redis.call('HSET', agent_key(id), 'status', ARGV[7])
    end
    local seen = presence(id, now)
    if redis.call('HGET', agent_key(id), 'seen') ~= seen then
      redis.call('HSET', agent_key(id), 'seen', seen)
      changed[#changed + 1] = id
      changed[#changed + 1] = seen
    end
  end
end
return changed
