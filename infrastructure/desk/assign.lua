-- Automatic assignment: the oldest waiting chats to the online agents with the fewest
-- chats under capacity (ties: the one idle longest, then by id). Atomic: two replicas
-- running it at once never assign a chat twice or exceed a capacity.
--
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] capacity per agent   ARGV[4] ttl (s)
-- ARGV[5] at most this many chats looked at
-- Returns {session, agent, session, agent, ...}: what it assigned, in queue order.
init_keys(ARGV[1])
local now, capacity, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local candidates = {}
for _, agent in ipairs(redis.call('SMEMBERS', K.agents)) do
  if presence(agent, now) == 'online' then
    local load = tonumber(redis.call('HGET', K.load, agent) or '0')
    if load < capacity then
      local last = tonumber(redis.call('HGET', agent_key(agent), 'last_assigned_at') or '0')
      candidates[#candidates + 1] = {id = agent, load = load, last = last}
    end
  end
end

local assigned = {}
if #candidates == 0 then
  return assigned
end
local function better(a, b)
  if a.load ~= b.load then return a.load < b.load end
  if a.last ~= b.last then return a.last < b.last end
  return a.id < b.id
end
local tick = 0
for _, name in ipairs(redis.call('ZRANGE', K.queue, 0, tonumber(ARGV[5]) - 1)) do
  local best = nil
  for _, c in ipairs(candidates) do
    if c.load < capacity and (best == nil or better(c, best)) then best = c end
  end
  if best == nil then break end
  local current = redis.call('HGET', sess_key(name), 'status')
  if current == 'waiting_agent' then
    apply_move(name, current, '', 'agent_active', best.id, '', now, ttl, '')
    best.load = best.load + 1
    -- Later in this same call than anyone idle before it (ties within one call).
    tick = tick + 1
    best.last = tonumber(now) + tick / 1000
    redis.call('HSET', agent_key(best.id), 'last_assigned_at', now)
    assigned[#assigned + 1] = name
    assigned[#assigned + 1] = best.id
  elseif not current then
    redis.call('ZREM', K.queue, name) -- expired while it waited
  end
end
return assigned
