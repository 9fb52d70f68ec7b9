// The agent workbench: sign in, watch the queue live, get or take chats, talk, release,
// close. Plain ES module, no build step. The sign-in survives a reload (sessionStorage);
// the chats held always come from the server (a new tab shows the same ones).

import { makeApi } from "/shared/http.js";
import { LiveStream } from "/shared/stream.js";
import {
  compareIds,
  formatDuration,
  formatTime,
  lengthCounter,
  loadLimits,
  markSeen,
  setConnection,
} from "/shared/ui.js";
import { alertInBackground, alertsWanted, askForAlerts } from "/static/alerts.js";
import { cannedReplies } from "/static/canned.js";

const AUTH_KEY = "cs-agent-auth";
const STATUS_WORDS = {
  waiting_agent: "back in the queue",
  ai: "back with the bot",
  closed: "chat closed",
  abandoned: "left the queue",
};
const BASE_TITLE = "Agent workbench";

const $ = (id) => document.getElementById(id);

const state = {
  agentId: null,
  token: null,
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

const api = makeApi({
  getToken: () => state.token,
  unreachable: "the service cannot be reached",
  onUnauthorized: () => logout("Your sign-in has expired. Please sign in again."),
});

const sessionPath = (name) => `/api/sessions/${encodeURIComponent(name)}`;

// --- Formatting -----------------------------------------------------------------------

function senderLabel(m) {
  if (m.sender === "customer") return "Customer";
  if (m.sender === "bot") return "Bot";
  if (m.sender === "agent") return m.sender_id === state.agentId ? "You" : `Agent ${m.sender_id}`;
  if (m.sender === "note") {
    return `Internal note · ${m.sender_id === state.agentId ? "you" : m.sender_id}`;
  }
  return "Notice";
}

/** An internal note as the transcript shows it (agents only; its own colour). */
function noteMessage(n) {
  return {
    id: `note:${n.id || n.note_id}`,
    sender: "note",
    sender_id: n.agent_id,
    content: n.content,
    timestamp: n.timestamp,
  };
}

/** How agents see a customer: the name they gave, else a short session id. */
function customerName(s) {
  return s.display_name || `Customer ${String(s.session_name).slice(-6)}`;
}

// --- New-request badge and title --------------------------------------------------------

function unseenCount() {
  let count = 0;
  for (const name of state.queue.keys()) if (!state.seen.has(name)) count += 1;
  return count;
}

function unreadCount() {
  let count = 0;
  for (const held of state.held.values()) count += held.unread;
  return count;
}

function renderUnseen() {
  const unseen = unseenCount();
  $("badge").hidden = unseen === 0;
  $("badge-count").textContent = String(unseen);
  $("badge").setAttribute(
    "aria-label",
    `${unseen} new transfer request${unseen === 1 ? "" : "s"}; mark as seen`,
  );
  const total = unseen + unreadCount();
  document.title = total ? `(${total}) ${BASE_TITLE}` : BASE_TITLE;
}

function markQueueSeen() {
  state.seen = new Set(state.queue.keys());
  renderUnseen();
}

// --- The queue --------------------------------------------------------------------------

/** A notice above the queue; an error one (`key`) goes away once that thing works again. */
function queueNotice(text, key = "") {
  $("queue-notice").textContent = text;
  $("queue-notice").dataset.key = key;
}

function clearQueueError(key) {
  if ($("queue-notice").dataset.key === key) queueNotice("");
}

function renderQueue() {
  const list = $("queue");
  const entries = [...state.queue.values()].sort((a, b) => a.waitStart - b.waitStart);
  entries.forEach((entry, index) => {
    if (list.children[index] !== entry.el) list.insertBefore(entry.el, list.children[index] || null);
  });
  $("queue-length").textContent = String(entries.length);
  $("queue-empty").hidden = entries.length > 0;
  tickQueue();
  renderUnseen();
}

function tickQueue() {
  const now = Date.now();
  for (const entry of state.queue.values()) {
    entry.el.querySelector(".q-waited").textContent = formatDuration((now - entry.waitStart) / 1000);
  }
}

/** Add or update a waiting session (a queue GET row or a transfer_request payload). */
function upsertQueue(s) {
  if (state.held.has(s.session_name)) return false;
  let waitStart = Date.now();
  if (typeof s.waited_seconds === "number") waitStart = Date.now() - s.waited_seconds * 1000;
  else if (s.waiting_since) waitStart = Date.parse(s.waiting_since);
  const known = state.queue.get(s.session_name);
  if (known) {
    known.waitStart = Math.min(known.waitStart, waitStart);
    renderQueue();
    return false;
  }
  const li = document.createElement("li");
  li.className = "q-item";
  li.dataset.session = s.session_name;
  const main = document.createElement("div");
  main.className = "q-main";
  const name = document.createElement("span");
  name.className = "q-name";
  name.textContent = customerName(s);
  name.title = s.session_name;
  const first = document.createElement("span");
  first.className = "q-reason";
  first.textContent = s.first_message || s.reason || s.escalation_reason || "asked for a human";
  main.append(name, first);
  const waited = document.createElement("span");
  waited.className = "q-waited";
  waited.title = "time waited";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "primary small";
  button.textContent = "Take over";
  button.setAttribute("aria-label", `Take over ${customerName(s)}`);
  button.addEventListener("click", () => takeover(s.session_name, button));
  li.append(main, waited, button);
  state.queue.set(s.session_name, {
    name: s.session_name,
    label: customerName(s),
    waitStart,
    el: li,
  });
  renderQueue();
  return true;
}

function removeFromQueue(name) {
  const entry = state.queue.get(name);
  if (!entry) return;
  entry.el.remove();
  state.queue.delete(name);
  renderQueue();
}

async function loadQueue() {
  const rows = await api("/api/sessions?status=waiting_agent");
  const names = new Set(rows.map((r) => r.session_name));
  for (const name of [...state.queue.keys()]) if (!names.has(name)) removeFromQueue(name);
  for (const row of rows) upsertQueue(row);
  for (const name of [...state.seen]) if (!names.has(name)) state.seen.delete(name);
  clearQueueError("queue");
  renderUnseen();
}

async function takeover(name, button) {
  markQueueSeen();
  button.disabled = true;
  queueNotice("");
  try {
    await api(`${sessionPath(name)}/takeover`, {
      method: "POST",
      body: { agent_id: state.agentId },
    });
  } catch (error) {
    button.disabled = false;
    const label = state.queue.get(name)?.label || name;
    if (error.status === 409) {
      const holder = /held by agent '([^']+)'/.exec(error.message);
      queueNotice(
        holder ? `${label}: taken by ${holder[1]}` : `${label}: no longer waiting (${error.message})`,
      );
      removeFromQueue(name);
    } else if (error.status !== 401) {
      queueNotice(`${label}: could not take over: ${error.message}`);
    }
    return;
  }
  const label = state.queue.get(name)?.label;
  removeFromQueue(name);
  holdSession({ session_name: name, status: "agent_active", display_name: label });
  selectSession(name);
  await loadTranscript(name);
}

// --- Held sessions ----------------------------------------------------------------------

/** A chat this agent holds (a session row or event payload); `unread` from the server. */
function holdSession(s) {
  const name = s.session_name;
  if (!state.held.has(name)) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "mine-item";
    button.addEventListener("click", () => selectSession(name));
    li.append(button);
    state.held.set(name, {
      name,
      label: customerName(s),
      status: s.status,
      messages: new Map(),
      unread: 0,
      el: li,
      button,
    });
    $("mine").append(li);
  }
  const held = state.held.get(name);
  held.status = s.status;
  if (s.display_name) held.label = s.display_name;
  if (typeof s.unread === "number" && name !== state.current) held.unread = s.unread;
  renderMine();
}

function dropSession(name) {
  const held = state.held.get(name);
  if (!held) return;
  held.el.remove();
  state.held.delete(name);
  if (state.current === name) {
    state.current = null;
    renderConversation();
  }
  renderMine();
}

function renderMine() {
  for (const held of state.held.values()) {
    held.button.textContent = held.unread ? `${held.label} (${held.unread} new)` : held.label;
    held.button.title = held.name;
    held.button.setAttribute("aria-current", String(held.name === state.current));
  }
  $("mine-empty").hidden = state.held.size > 0;
  renderUnseen();
  if (state.team.has(state.agentId)) renderTeam();
}

/** Tell the customer what this agent has seen of the open chat (the newest message). */
function readOpenChat() {
  const held = state.current ? state.held.get(state.current) : null;
  if (!held || document.hidden) return;
  let newest = null;
  for (const m of held.messages.values()) {
    if (m.sender === "customer" && (!newest || compareIds(m.id, newest) > 0)) newest = m.id;
  }
  if (!newest || newest === held.readUpTo) return;
  held.readUpTo = newest;
  held.unread = 0;
  api(`${sessionPath(held.name)}/read`, { method: "POST", body: { up_to: newest } }).catch(
    () => {},
  );
}

function selectSession(name) {
  state.current = name;
  const held = state.held.get(name);
  if (held && held.unread) {
    held.unread = 0;
    api(`${sessionPath(name)}/read`, { method: "POST" }).catch(() => {});
  }
  renderMine();
  renderConversation();
  $("reply-input").focus();
}

function renderConversation() {
  const held = state.current ? state.held.get(state.current) : null;
  $("conv").hidden = !held;
  $("conv-empty").hidden = Boolean(held);
  $("conv-error").textContent = "";
  if (!held) return;
  $("conv-title").textContent = held.label;
  $("conv-title").title = held.name;
  $("conv-status").textContent =
    held.status === "agent_active" ? "You are chatting with the customer" : `Status: ${held.status}`;
  const items = [...held.messages.values()].sort(byTime).map(messageItem);
  $("transcript").replaceChildren(...items);
  if (held.seenUpTo) markSeen($("transcript"), 'li.msg[data-sender="agent"]', held.seenUpTo);
  readOpenChat();
  const last = $("transcript").lastElementChild;
  if (last) last.scrollIntoView({ block: "end" });
}

function byTime(a, b) {
  return (Date.parse(a.timestamp) || 0) - (Date.parse(b.timestamp) || 0);
}

function messageItem(m) {
  const li = document.createElement("li");
  li.className = `msg msg-${m.sender}${m.sender === "agent" && m.sender_id === state.agentId ? " msg-mine" : ""}`;
  li.dataset.messageId = m.id;
  li.dataset.sender = m.sender;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = senderLabel(m);
  const bubble = document.createElement("p");
  bubble.className = "bubble";
  bubble.textContent = m.content;
  const time = document.createElement("time");
  time.dateTime = m.timestamp;
  time.textContent = formatTime(m.timestamp);
  li.append(who, bubble, time);
  return li;
}

/** A message for a held session; each id shows once. */
function addMessage(name, raw) {
  const held = state.held.get(name);
  const id = raw.id || raw.message_id;
  if (!held || !id || held.messages.has(id)) return;
  const m = { ...raw, id };
  held.messages.set(id, m);
  if (name !== state.current || document.hidden) {
    if (m.sender === "customer") {
      if (name !== state.current) held.unread += 1;
      alertInBackground(`${held.label}: ${m.content}`, "message");
    }
    renderMine();
    if (name !== state.current) return;
  }
  const list = $("transcript");
  const li = messageItem(m);
  const when = Date.parse(m.timestamp) || 0;
  let before = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    const other = held.messages.get(node.dataset.messageId);
    if (!other || (Date.parse(other.timestamp) || 0) <= when) break;
    before = node;
  }
  list.insertBefore(li, before);
  if (!before) li.scrollIntoView({ block: "end" });
  if (m.sender === "customer") readOpenChat();
  if (held.seenUpTo) markSeen(list, 'li.msg[data-sender="agent"]', held.seenUpTo);
}

async function loadTranscript(name) {
  try {
    const [messages, notes] = await Promise.all([
      api(`${sessionPath(name)}/messages`),
      api(`${sessionPath(name)}/notes`),
    ]);
    for (const m of messages) addMessage(name, m);
    for (const n of notes) addMessage(name, noteMessage(n));
  } catch (error) {
    if (name === state.current) $("conv-error").textContent = `Transcript: ${error.message}`;
  }
}

/** Transfer: to an online colleague with room (with a note), or back to the queue. */
async function askTransfer() {
  const name = state.current;
  if (!name) return;
  const label = state.held.get(name)?.label || name;
  await loadTeam().catch(() => {}); // who is online with room, now
  const free = [...state.team.values()].filter(
    (a) => a.agent_id !== state.agentId && a.status === "online" && a.chats < a.capacity,
  );
  const select = $("transfer-to");
  select.replaceChildren(
    ...free.map((a) => new Option(`${a.agent_id} (${a.chats}/${a.capacity})`, a.agent_id)),
  );
  $("transfer-none").hidden = free.length > 0;
  $("transfer-send").disabled = free.length === 0;
  $("transfer-note").value = "";
  const dialog = $("transfer-dialog");
  dialog.showModal();
  const choice = await new Promise((resolve) =>
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }),
  );
  if (choice !== "agent" && choice !== "queue") return;
  const body = {};
  if (choice === "agent") body.to_agent_id = select.value;
  const note = $("transfer-note").value.trim();
  if (note) body.note = note;
  try {
    await api(`${sessionPath(name)}/transfer`, { method: "POST", body });
    dropSession(name);
    queueNotice(
      choice === "agent" ? `${label}: transferred to ${body.to_agent_id}` : `${label}: back in the queue`,
    );
  } catch (error) {
    $("conv-error").textContent = `Could not transfer: ${error.message}`;
  }
}

/** Release (back to the bot) or close (the customer is asked for a rating). */
async function finish(action) {
  const name = state.current;
  if (!name) return;
  const label = state.held.get(name)?.label || name;
  const button = $(action === "release" ? "release" : "close-chat");
  button.disabled = true;
  try {
    await api(`${sessionPath(name)}/${action}`, {
      method: "POST",
      body: { agent_id: state.agentId },
    });
    dropSession(name);
    queueNotice(action === "release" ? `${label}: back with the bot` : `${label}: chat closed`);
  } catch (error) {
    $("conv-error").textContent = `Could not ${action}: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function sendReply(content) {
  const name = state.current;
  if ($("note-mode").checked) {
    const note = await api(`${sessionPath(name)}/notes`, { method: "POST", body: { content } });
    addMessage(name, noteMessage(note));
    return;
  }
  const message = await api(`${sessionPath(name)}/messages`, {
    method: "POST",
    body: { agent_id: state.agentId, content },
  });
  addMessage(name, message);
}

/** On every load and after every reconnect: the chats held, from the server. */
async function loadMine() {
  const rows = await api("/api/agents/me/sessions");
  const names = new Set(rows.map((r) => r.session_name));
  for (const name of [...state.held.keys()]) if (!names.has(name)) dropSession(name);
  for (const row of rows) {
    const known = state.held.has(row.session_name);
    holdSession(row);
    if (!known) await loadTranscript(row.session_name);
  }
  clearQueueError("mine");
  if (!state.current && state.held.size) selectSession(state.held.keys().next().value);
}

// --- The team ---------------------------------------------------------------------------

function renderTeam() {
  const items = [...state.team.values()]
    .sort((a, b) => a.agent_id.localeCompare(b.agent_id))
    .map((a) => {
      const li = document.createElement("li");
      li.className = "team-item";
      li.dataset.status = a.status;
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.setAttribute("aria-hidden", "true");
      const who = document.createElement("span");
      who.textContent = a.agent_id === state.agentId ? `${a.agent_id} (you)` : a.agent_id;
      const load = document.createElement("span");
      load.className = "team-load";
      // Our own count is what this page holds (others' come with their presence).
      const chats = a.agent_id === state.agentId ? state.held.size : a.chats;
      load.textContent = `${a.status} · ${chats ?? 0}/${a.capacity ?? "?"}`;
      li.append(dot, who, load);
      return li;
    });
  $("team").replaceChildren(...items);
  const me = state.team.get(state.agentId);
  if (me) $("presence").value = me.status;
}

async function loadTeam() {
  const agents = await api("/api/agents");
  state.team = new Map(agents.map((a) => [a.agent_id, a]));
  renderTeam();
}

async function setPresence(status) {
  try {
    const me = await api("/api/agents/me/status", { method: "PUT", body: { status } });
    state.team.set(me.agent_id, me);
    renderTeam();
    clearQueueError("presence");
  } catch (error) {
    queueNotice(`Status not changed: ${error.message}`, "presence");
  }
}

// --- Events -----------------------------------------------------------------------------

function onEvent(envelope) {
  const p = envelope.payload || {};
  switch (envelope.type) {
    case "transfer_request":
      if (upsertQueue(p)) alertInBackground(`${customerName(p)} asks for an agent`, "request");
      break;
    case "assigned": {
      // (Its status_change may have come first and put it in "My chats" already.)
      removeFromQueue(p.session_name);
      if (!state.held.has(p.session_name)) {
        holdSession(p);
        loadTranscript(p.session_name);
      }
      const what = p.transferred_from
        ? `${customerName(p)} was transferred to you by ${p.transferred_from}` +
          (p.note ? `: “${p.note}”` : "")
        : `${customerName(p)} was assigned to you`;
      queueNotice(what);
      alertInBackground(what, "assigned");
      if (!state.current) selectSession(p.session_name);
      break;
    }
    case "abandoned":
      removeFromQueue(p.session_name);
      queueNotice(`${customerName(p)} left the queue`);
      break;
    case "presence": {
      const known = state.team.get(p.agent_id) || { agent_id: p.agent_id };
      state.team.set(p.agent_id, { ...known, ...p });
      renderTeam();
      break;
    }
    case "note":
      if (state.held.has(p.session_name)) addMessage(p.session_name, noteMessage(p));
      break;
    case "read": {
      const held = state.held.get(p.session_name);
      if (held && p.reader === "customer" && p.up_to) {
        held.seenUpTo = p.up_to;
        if (p.session_name === state.current) {
          markSeen($("transcript"), 'li.msg[data-sender="agent"]', p.up_to);
        }
      }
      break;
    }
    case "rated":
      queueNotice(`${customerName(p)} rated the chat ${p.score}/5`);
      break;
    case "queue_changed": {
      const waiting = new Set(p.waiting || []);
      for (const name of [...state.queue.keys()]) if (!waiting.has(name)) removeFromQueue(name);
      if ([...waiting].some((name) => !state.queue.has(name) && !state.held.has(name))) {
        loadQueue().catch(() => {});
      }
      break;
    }
    case "status_change":
      if (p.status === "agent_active" && p.agent_id === state.agentId) {
        const known = state.held.has(p.session_name);
        removeFromQueue(p.session_name);
        holdSession(p);
        if (!known) loadTranscript(p.session_name);
      } else if (state.held.has(p.session_name)) {
        const label = state.held.get(p.session_name).label;
        dropSession(p.session_name);
        queueNotice(`${label}: ${STATUS_WORDS[p.status] || p.status}`);
      } else if (p.status !== "waiting_agent") {
        removeFromQueue(p.session_name);
      }
      if (p.status === "waiting_agent") upsertQueue(p);
      break;
    case "new_message":
      if (!p.partial && p.session_name) addMessage(p.session_name, p);
      break;
    case "reset":
      resync();
      break;
    default:
      break;
  }
}

/** The queue, the chats held and the team, from the server: after every (re)connect, so
 * counters never add up stale events. */
async function resync() {
  try {
    await loadQueue();
    if (!state.loaded) {
      // What was waiting before this page opened is not news.
      state.loaded = true;
      markQueueSeen();
    }
    await loadMine();
    await loadTeam();
  } catch (error) {
    queueNotice(`Could not refresh: ${error.message}`, "queue");
  }
}

// --- Login ------------------------------------------------------------------------------

function startDesk() {
  $("login").hidden = true;
  $("desk").hidden = false;
  $("whoami").hidden = false;
  $("agent-name").textContent = state.agentId;
  renderUnseen();
  renderQueue();
  renderMine();
  renderConversation();
  clearInterval(state.tick);
  state.tick = setInterval(tickQueue, 1000);
  state.stream = new LiveStream(`/api/agents/${encodeURIComponent(state.agentId)}/events`, {
    onEvent,
    onState: setConnection,
    onReopen: () => resync(),
    token: () => state.token,
  });
  state.stream.start();
  $("alerts").hidden = !alertsWanted();
  resync();
}

/** "Log out": asks whether to hand the chats back (the default) or keep them. */
async function askLogout() {
  let handBack = true;
  if (state.held.size) {
    const dialog = $("logout-dialog");
    $("logout-text").textContent =
      `You hold ${state.held.size} chat${state.held.size === 1 ? "" : "s"}. ` +
      "Hand them back to the queue so another agent takes them?";
    dialog.showModal();
    const choice = await new Promise((resolve) =>
      dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }),
    );
    if (choice === "cancel" || choice === "") return;
    handBack = choice === "hand_back";
  }
  try {
    await api("/api/agents/logout", { method: "POST", body: { hand_back: handBack } });
  } catch {
    // signed out here anyway; the server's grace period returns the chats
  }
  logout("");
}

function logout(message) {
  if (state.stream) state.stream.stop();
  state.stream = null;
  clearInterval(state.tick);
  sessionStorage.removeItem(AUTH_KEY);
  state.token = null;
  state.agentId = null;
  for (const entry of state.queue.values()) entry.el.remove();
  state.queue.clear();
  for (const held of state.held.values()) held.el.remove();
  state.held.clear();
  state.current = null;
  state.seen.clear();
  state.loaded = false;
  state.team.clear();
  $("team").replaceChildren();
  renderUnseen();
  setConnection("idle");
  $("desk").hidden = true;
  $("whoami").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function login(event) {
  event.preventDefault();
  const agentId = $("agent-id").value.trim();
  const password = $("password").value;
  if (!agentId || !password) {
    $("login-error").textContent = "Enter your agent ID and password.";
    return;
  }
  $("login-button").disabled = true;
  $("login-error").textContent = "";
  try {
    const answer = await api("/api/agents/login", {
      method: "POST",
      body: { agent_id: agentId, password },
    });
    state.agentId = answer.agent_id;
    state.token = answer.token;
    sessionStorage.setItem(AUTH_KEY, JSON.stringify({ agentId: state.agentId, token: state.token }));
    $("password").value = "";
    startDesk();
  } catch (error) {
    $("login-error").textContent =
      error.status === 401 ? "Wrong agent ID or password." : `Sign-in failed: ${error.message}`;
  } finally {
    $("login-button").disabled = false;
  }
}

// --- Wiring -----------------------------------------------------------------------------

function init() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", askLogout);
  $("badge").addEventListener("click", markQueueSeen);
  $("release").addEventListener("click", () => finish("release"));
  $("close-chat").addEventListener("click", () => finish("close"));
  $("transfer").addEventListener("click", askTransfer);
  $("note-mode").addEventListener("change", (event) => {
    const on = event.target.checked;
    $("composer").classList.toggle("noting", on);
    $("reply-input").placeholder = on
      ? "Internal note for agents… (the customer never sees it)"
      : "Reply… (Enter sends, Shift+Enter for a new line)";
  });
  $("presence").addEventListener("change", (event) => setPresence(event.target.value));
  $("alerts").addEventListener("click", async () => {
    await askForAlerts();
    $("alerts").hidden = !alertsWanted();
  });
  // Coming back to the tab counts as having looked at the queue.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    if (unseenCount()) markQueueSeen();
    readOpenChat();
  });

  const input = $("reply-input");
  const form = $("composer");
  state.counter = lengthCounter(input, $("length"), () => state.limits.message_max_chars);
  loadLimits(api).then((limits) => {
    state.limits = limits;
    state.counter.render();
  });
  input.addEventListener("input", () => {
    if ($("conv-error").textContent.startsWith("Too long") && !state.counter.tooLong()) {
      $("conv-error").textContent = "";
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || !state.current) return;
    const tooLong = state.counter.tooLong();
    if (tooLong) {
      $("conv-error").textContent = tooLong;
      return;
    }
    input.value = "";
    state.counter.render();
    try {
      await sendReply(content);
      $("conv-error").textContent = "";
    } catch (error) {
      if (!input.value) input.value = content;
      state.counter.render();
      $("conv-error").textContent = `Not sent: ${error.message}`;
    }
  });
  const canned = cannedReplies({
    api,
    input,
    context: () => ({
      customerName: state.current ? state.held.get(state.current)?.label : "",
      agentName: state.agentId,
    }),
  });
  input.addEventListener("keydown", (event) => {
    if (canned.onKey(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  setConnection("idle");
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(AUTH_KEY) || "null");
  } catch {
    saved = null;
  }
  if (saved && saved.agentId && saved.token) {
    state.agentId = saved.agentId;
    state.token = saved.token;
    startDesk();
  }
}

init();
