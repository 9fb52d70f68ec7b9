// The agent workbench: sign in, watch the queue live, take over, chat, release.
// Plain ES module, no build step. Login and held sessions survive a reload (sessionStorage).

import { makeApi } from "/shared/http.js";
import { LiveStream } from "/shared/stream.js";
import { formatDuration, formatTime, setConnection } from "/shared/ui.js";

const AUTH_KEY = "cs-agent-auth";
const HELD_KEY = "cs-agent-held";
const BASE_TITLE = "Agent workbench";

const $ = (id) => document.getElementById(id);

const state = {
  agentId: null,
  token: null,
  stream: null,
  queue: new Map(), // name -> {name, waitStart, reason, el}
  held: new Map(), // name -> {name, status, messages: Map(id -> message), unread}
  current: null,
  unseen: 0,
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
  return "Notice";
}

// --- New-request badge and title --------------------------------------------------------

function renderUnseen() {
  $("badge").hidden = state.unseen === 0;
  $("badge-count").textContent = String(state.unseen);
  $("badge").setAttribute(
    "aria-label",
    `${state.unseen} new transfer request${state.unseen === 1 ? "" : "s"}; mark as seen`,
  );
  document.title = state.unseen ? `(${state.unseen}) ${BASE_TITLE}` : BASE_TITLE;
}

function markSeen() {
  state.unseen = 0;
  renderUnseen();
}

// --- The queue --------------------------------------------------------------------------

function queueNotice(text) {
  $("queue-notice").textContent = text;
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
  name.textContent = s.session_name;
  name.title = s.session_name;
  const reason = document.createElement("span");
  reason.className = "q-reason";
  reason.textContent = s.reason || s.escalation_reason || "asked for a human";
  main.append(name, reason);
  const waited = document.createElement("span");
  waited.className = "q-waited";
  waited.title = "time waited";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "primary small";
  button.textContent = "Take over";
  button.setAttribute("aria-label", `Take over ${s.session_name}`);
  button.addEventListener("click", () => takeover(s.session_name, button));
  li.append(main, waited, button);
  state.queue.set(s.session_name, { name: s.session_name, waitStart, el: li });
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
}

async function takeover(name, button) {
  markSeen();
  button.disabled = true;
  queueNotice("");
  try {
    await api(`${sessionPath(name)}/takeover`, {
      method: "POST",
      body: { agent_id: state.agentId },
    });
  } catch (error) {
    button.disabled = false;
    if (error.status === 409) {
      const holder = /held by agent '([^']+)'/.exec(error.message);
      queueNotice(
        holder ? `${name}: taken by ${holder[1]}` : `${name}: no longer waiting (${error.message})`,
      );
      removeFromQueue(name);
    } else if (error.status !== 401) {
      queueNotice(`${name}: could not take over: ${error.message}`);
    }
    return;
  }
  removeFromQueue(name);
  holdSession(name, "agent_active");
  selectSession(name);
  await loadTranscript(name);
}

// --- Held sessions ----------------------------------------------------------------------

function saveHeld() {
  sessionStorage.setItem(HELD_KEY, JSON.stringify([...state.held.keys()]));
}

function holdSession(name, status) {
  if (!state.held.has(name)) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "mine-item";
    button.addEventListener("click", () => selectSession(name));
    li.append(button);
    state.held.set(name, { name, status, messages: new Map(), unread: 0, el: li, button });
    $("mine").append(li);
    saveHeld();
  }
  state.held.get(name).status = status;
  renderMine();
}

function dropSession(name) {
  const held = state.held.get(name);
  if (!held) return;
  held.el.remove();
  state.held.delete(name);
  saveHeld();
  if (state.current === name) {
    state.current = null;
    renderConversation();
  }
  renderMine();
}

function renderMine() {
  for (const held of state.held.values()) {
    held.button.textContent = held.unread ? `${held.name} (${held.unread} new)` : held.name;
    held.button.setAttribute("aria-current", String(held.name === state.current));
  }
  $("mine-empty").hidden = state.held.size > 0;
}

function selectSession(name) {
  state.current = name;
  const held = state.held.get(name);
  if (held) held.unread = 0;
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
  $("conv-title").textContent = `Session ${held.name}`;
  $("conv-status").textContent =
    held.status === "agent_active" ? "You are chatting with the customer" : `Status: ${held.status}`;
  const items = [...held.messages.values()].sort(byTime).map(messageItem);
  $("transcript").replaceChildren(...items);
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
  if (name !== state.current) {
    held.unread += 1;
    renderMine();
    return;
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
}

async function loadTranscript(name) {
  try {
    const messages = await api(`${sessionPath(name)}/messages`);
    for (const m of messages) addMessage(name, m);
  } catch (error) {
    if (name === state.current) $("conv-error").textContent = `Transcript: ${error.message}`;
  }
}

async function release() {
  const name = state.current;
  if (!name) return;
  $("release").disabled = true;
  try {
    await api(`${sessionPath(name)}/release`, { method: "POST", body: { agent_id: state.agentId } });
    dropSession(name);
    queueNotice(`${name}: released to the bot`);
  } catch (error) {
    $("conv-error").textContent = `Could not release: ${error.message}`;
  } finally {
    $("release").disabled = false;
  }
}

async function sendReply(content) {
  const name = state.current;
  const message = await api(`${sessionPath(name)}/messages`, {
    method: "POST",
    body: { agent_id: state.agentId, content },
  });
  addMessage(name, message);
}

/** After a reload or a reconnect: which of our sessions do we still hold? */
async function recheckHeld(names) {
  for (const name of names) {
    try {
      const s = await api(sessionPath(name));
      if (s.status === "agent_active" && s.agent_id === state.agentId) {
        holdSession(name, s.status);
        await loadTranscript(name);
      } else {
        dropSession(name);
      }
    } catch (error) {
      if (error.status === 404) dropSession(name);
    }
  }
  if (!state.current && state.held.size) selectSession(state.held.keys().next().value);
}

// --- Events -----------------------------------------------------------------------------

function onEvent(envelope) {
  const p = envelope.payload || {};
  switch (envelope.type) {
    case "transfer_request":
      if (upsertQueue(p)) {
        state.unseen += 1;
        renderUnseen();
      }
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
        holdSession(p.session_name, p.status);
        if (!known) loadTranscript(p.session_name);
      } else if (state.held.has(p.session_name)) {
        dropSession(p.session_name);
        queueNotice(`${p.session_name}: now ${p.status}`);
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

async function resync() {
  try {
    await loadQueue();
    await recheckHeld([...state.held.keys()]);
  } catch {
    // the stream reports its state; the next reconnect resyncs again
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
    onReopen: (resumed) => {
      if (!resumed) resync();
    },
    token: () => state.token,
  });
  state.stream.start();
  loadQueue().catch((error) => queueNotice(`Queue: ${error.message}`));
}

function logout(message) {
  if (state.stream) state.stream.stop();
  state.stream = null;
  clearInterval(state.tick);
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(HELD_KEY);
  state.token = null;
  state.agentId = null;
  for (const entry of state.queue.values()) entry.el.remove();
  state.queue.clear();
  for (const held of state.held.values()) held.el.remove();
  state.held.clear();
  state.current = null;
  markSeen();
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
  $("logout").addEventListener("click", () => logout(""));
  $("badge").addEventListener("click", markSeen);
  $("release").addEventListener("click", release);
  // Coming back to the tab counts as having looked at the queue.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.unseen) markSeen();
  });

  const input = $("reply-input");
  const form = $("composer");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || !state.current) return;
    input.value = "";
    try {
      await sendReply(content);
      $("conv-error").textContent = "";
    } catch (error) {
      if (!input.value) input.value = content;
      $("conv-error").textContent = `Not sent: ${error.message}`;
    }
  });
  input.addEventListener("keydown", (event) => {
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
    let held = [];
    try {
      held = JSON.parse(sessionStorage.getItem(HELD_KEY) || "[]");
    } catch {
      held = [];
    }
    recheckHeld(held);
  }
}

init();
