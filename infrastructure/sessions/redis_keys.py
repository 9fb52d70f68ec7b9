"""The session store's Redis side, apart from its methods: the key layout, the scripts'
text, and how a Redis answer becomes a :class:`Session` or a :class:`ChatMessage`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Final

from infrastructure.attachments.models import Attachment

from .models import (
    ChatMessage,
    IllegalTransition,
    NotHolder,
    SenderRole,
    Session,
    SessionHeldByAnother,
    SessionNotFound,
    SessionStatus,
    ms_to_datetime,
)

OK: Final = "ok"

#: A side has read the chat up to a message: the holding agent (its unread count goes back to
#: 0) or the customer ('' as the agent). A side's mark only moves forward (receipts can arrive
#: out of order; as ``models.is_newer``): ids are compared as numbers of any length.
MARK_READ: Final = """
local function number_cmp(a, b)
  a, b = (string.gsub(a, '^0+', '')), (string.gsub(b, '^0+', ''))
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function forward(field, up_to)
  local current = redis.call('HGET', KEYS[1], field)
  if current then
    local ms, seq = string.match(up_to, '^(%d+)-(%d+)$')
    local cms, cseq = string.match(current, '^(%d+)-(%d+)$')
    if ms and cms then
      local by_ms = number_cmp(ms, cms)
      if by_ms < 0 or (by_ms == 0 and number_cmp(seq, cseq) <= 0) then return end
    end
  end
  redis.call('HSET', KEYS[1], field, up_to)
end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'not_found'} end
local agent, up_to = ARGV[1], ARGV[2]
if agent ~= '' then
  local holder = redis.call('HGET', KEYS[1], 'agent_id') or ''
  if status ~= 'agent_active' or holder ~= agent then return {'not_holder', holder} end
  redis.call('HSET', KEYS[1], 'unread', 0)
  if up_to ~= '' then forward('agent_read_up_to', up_to) end
elseif up_to ~= '' then
  forward('customer_read_up_to', up_to)
end
local state = redis.call('HGETALL', KEYS[1])
table.insert(state, 1, 'ok')
return state
"""


def text(value: Any) -> str:
    # The client may or may not decode responses; accept both.
    return value.decode() if isinstance(value, bytes) else str(value)


def lua_script(package: str, name: str, *, record_maxlen: int) -> str:
    """A script that moves sessions, shipped beside a module, after ``lib.lua`` (the key
    layout and the effects of a move, shared by every such script); ``record_maxlen``: the
    cap of the record stream every move is appended to."""
    body = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    lib = resources.files(__package__).joinpath("lib.lua").read_text(encoding="utf-8")
    return lib.replace("__RECORD_MAXLEN__", str(int(record_maxlen))) + "\n" + body


def script_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class SessionKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue = f"{prefix}queue:waiting"
        #: session name -> the agent holding it (global, like the queue).
        self.held = f"{prefix}held"
        #: The record stream (one for every session; see record_log.py).
        self.record = f"{prefix}record"
        #: agent id -> how many chats it holds.
        self.load = f"{prefix}load"
        #: The latest waits before an agent (ms), newest first: the queue's estimate.
        self.waits = f"{prefix}waits"
        #: Agents seen (presence, assignment).
        self.agents = f"{prefix}agents"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}agent:{agent_id}"

    def agent_streams(self, agent_id: str) -> str:
        return f"{self.prefix}conn:{agent_id}"

    def session(self, name: str) -> str:
        return f"{self.prefix}sess:{{{name}}}"

    def transcript(self, name: str) -> str:
        return f"{self.prefix}msgs:{{{name}}}"

    def notes(self, name: str) -> str:
        """Agents' internal notes: a stream of their own, never the transcript's."""
        return f"{self.prefix}notes:{{{name}}}"


def session_from_hash(name: str, fields: Mapping[str, str]) -> Session:
    def when(field: str) -> Any:
        raw = fields.get(field)
        return None if raw is None else ms_to_datetime(int(raw))

    rating = fields.get("rating")
    return Session(
        session_name=name,
        status=SessionStatus(fields["status"]),
        agent_id=fields.get("agent_id") or None,
        created_at=when("created_at"),
        updated_at=when("updated_at"),
        waiting_since=when("waiting_since"),
        escalation_reason=fields.get("escalation_reason") or None,
        display_name=fields.get("display_name") or None,
        first_message=fields.get("first_message") or None,
        unread=int(fields.get("unread") or 0),
        last_activity_at=when("last_activity_at"),
        rating=None if rating is None else int(rating),
        rating_comment=fields.get("rating_comment") or None,
        customer_read_up_to=fields.get("customer_read_up_to") or None,
        agent_read_up_to=fields.get("agent_read_up_to") or None,
    )


def pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def decode_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def message_from_entry(name: str, entry_id: Any, raw: Mapping[Any, Any]) -> ChatMessage:
    fields = decode_hash(raw)
    return ChatMessage(
        id=text(entry_id),
        session_name=name,
        sender=SenderRole(fields["sender"]),
        sender_id=fields.get("sender_id") or None,
        content=fields["content"],
        timestamp=ms_to_datetime(int(fields["ts"])),
        attachment=Attachment.model_validate_json(fields["attachment"])
        if fields.get("attachment")
        else None,
    )


def raise_for(
    code: str,
    reply: Sequence[Any],
    name: str,
    requested: SessionStatus,
    agent_id: str | None,
) -> None:
    if code == "not_found":
        raise SessionNotFound(name)
    if code == "held":
        raise SessionHeldByAnother(text(reply[1]), name)
    if code == "illegal":
        raise IllegalTransition(name, SessionStatus(text(reply[1])), requested)
    if code == "not_holder":
        raise NotHolder(name, agent_id or "", text(reply[1]) or None)
    raise RuntimeError(f"unexpected reply from the session script: {code!r}")
