"""The Redis side of the SSE bus: one connection per process subscribes and publishes.

How the modules here fit together (:mod:`.manager` holds them):

* ``publish`` runs one Lua script (:mod:`~infrastructure.bus.redis.publish_script`)
  that appends the event to the channel's history Stream, gives the Stream an epoch
  if it is new, and ``PUBLISH``-es it: no event is published without its history
  entry, and every event's id is its Stream id.
* One connection (the :class:`~infrastructure.bus.redis.pipe.CommandPipe`'s, RESP3)
  carries every channel any listener of this process follows and the process's
  publishes; :class:`~infrastructure.bus.hub.LocalHub` fans out. Which channels are
  subscribed is :mod:`~infrastructure.bus.redis.subscriptions`' business; where this
  process is in each, :mod:`~infrastructure.bus.redis.positions`'.
* When the connection drops, the subscriber loop (:mod:`~infrastructure.bus.redis.subscriber`)
  reconnects with backoff, resubscribes every channel, catches each channel up from its
  Stream (:mod:`~infrastructure.bus.redis.recovery`) and then writes the
  :mod:`~infrastructure.bus.redis.outbox`: events published here while Redis was
  unreachable, which local listeners already received. Where Redis is (Sentinel), and
  whether the subscription still delivers, is :mod:`~infrastructure.bus.redis.topology`'s
  watch, which restarts the subscriber.
* On a Redis Cluster (``redis+cluster://``), :mod:`~infrastructure.bus.redis.cluster`
  keeps one connection and one subscriber per primary (shard channels) and follows the
  slot map; the rest is the same code.

redis-py's PubSub is not used: its retry layer would reconnect silently and
resubscribe only what it tracked itself.
"""
