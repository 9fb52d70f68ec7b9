// What every part of the workbench page shares: its state, the API client, how people
// and messages are named.

import { makeApi } from "/shared/http.js";
import { logout } from "/static/app.js";

export const AUTH_KEY = "cs-agent-auth";
export const STATUS_WORDS = {
  waiting_agent: "back in the queue",
  ai: "back with the bot",
  closed: "chat closed",
  abandoned: "left the queue",
};
export const BASE_TITLE = "Agent workbench";

export const $ = (id) => document.getElementById(id);

export const state = {
  agentId: null,
  token: null,
  roles: [], // ["supervisor"] for an agent SUPERVISORS lists (the login says)
  stream: null,
  queue: new Map(), // name -> {name, waitStart, reason, el}
  held: new Map(), // name -> {name, status, messages: Map(id -> message), unread}
  current: null,
  // Transfer requests the agent has not looked at: the queue's entries not yet seen, so
  // the count is recomputed from the queue itself (never more than are waiting).
  seen: new Set(),
  team: new Map(), // agent id -> {agent_id, status, chats, capacity}
  limits: { message_max_chars: 4000 },
  counter: null,
  loaded: false,
  tick: null,
};

// --- HTTP -----------------------------------------------------------------------------

export const api = makeApi({
  getToken: () => state.token,
  unreachable: "the service cannot be reached",
  onUnauthorized: () => logout("Your sign-in has expired. Please sign in again."),
});

export const sessionPath = (name) => `/api/sessions/${encodeURIComponent(name)}`;

// --- Formatting -----------------------------------------------------------------------

export function senderLabel(m) {
  if (m.sender === "customer") return "Customer";
  if (m.sender === "bot") return "Bot";
  if (m.sender === "agent") return m.sender_id === state.agentId ? "You" : `Agent ${m.sender_id}`;
  if (m.sender === "note") {
    return `Internal note · ${m.sender_id === state.agentId ? "you" : m.sender_id}`;
  }
  return "Notice";
}

/** An internal note as the transcript shows it (agents only; its own colour). */
export function noteMessage(n) {
  return {
    id: `note:${n.id || n.note_id}`,
    sender: "note",
    sender_id: n.agent_id,
    content: n.content,
    timestamp: n.timestamp,
  };
}

/** How agents see a customer: the name they gave, else a short session id. */
export function customerName(s) {
  return s.display_name || `Customer ${String(s.session_name).slice(-6)}`;
}

/** The tag beside a supervisor's name in the team lists. */
export function supervisorTag() {
  const tag = document.createElement("span");
  tag.className = "sv-tag";
  tag.textContent = "supervisor";
  return tag;
}
