// The supervisor's live view (agents listed in SUPERVISORS): every agent with presence and
// load, the queue with waits, every active chat; open one read-only, whisper (an internal
// note its agent sees), take it over. One snapshot (GET /api/supervisor/overview), then the
// events of /api/supervisor/events (the broadcast and every agent's channel): no polling.

import { LiveStream } from "/shared/stream.js";
import { enterSends } from "/shared/ui.js";
import { messageItem } from "/static/chats.js";
import { $, api, customerName, noteMessage, sessionPath, state } from "/static/common.js";
import { renderLists, tickLists } from "/static/supervisor_lists.js";

const sv = {
  stream: null,
  agents: new Map(), // id -> {agent_id, status, capacity, supervisor}
  queue: new Map(), // name -> {session_name, label, waitStart, reason}
  chats: new Map(), // name -> {session_name, label, agent_id, lastActivity, el}
  open: null, // the chat followed read-only
  confirming: null, // {name, holder}: a takeover asked, not yet confirmed
  messages: new Map(), // of the open chat: id -> message
  tick: null,
  onTakenOver: null,
  pending: [], // one list per snapshot on its way: the events heard meanwhile
};

// --- The snapshot and the events -------------------------------------------------------

async function loadOverview() {
  // Events that come while the snapshot is on its way may be newer than it: kept, and
  // applied again on top of it (each event only sets what it says).
  const pending = [];
  sv.pending.push(pending);
  let view;
  try {
    view = await api("/api/supervisor/overview");
  } finally {
    sv.pending.splice(sv.pending.indexOf(pending), 1);
  }
  sv.agents = new Map(view.agents.map((a) => [a.agent_id, a]));
  sv.queue.clear();
  for (const q of view.queue) upsertWaiting(q);
  sv.chats.clear();
  for (const c of view.chats) upsertChat(c, c.last_activity_at);
  $("sv-error").textContent = "";
  for (const envelope of pending) apply(envelope);
  render();
  if (sv.open && !sv.chats.has(sv.open)) closeView();
}

function upsertWaiting(s) {
  let waitStart = Date.now();
  if (typeof s.waited_seconds === "number") waitStart = Date.now() - s.waited_seconds * 1000;
  else if (s.waiting_since) waitStart = Date.parse(s.waiting_since);
  const known = sv.queue.get(s.session_name);
  sv.queue.set(s.session_name, {
    session_name: s.session_name,
    label: customerName(s),
    waitStart: known ? Math.min(known.waitStart, waitStart) : waitStart,
    reason: s.first_message || s.reason || s.escalation_reason || known?.reason || "",
  });
}

function upsertChat(s, lastActivity) {
  const known = sv.chats.get(s.session_name);
  sv.chats.set(s.session_name, {
    session_name: s.session_name,
    label: s.display_name ? customerName(s) : known?.label || customerName(s),
    agent_id: s.agent_id,
    lastActivity: lastActivity ? Date.parse(lastActivity) : known?.lastActivity || Date.now(),
  });
}

function onEvent(envelope) {
  for (const pending of sv.pending) pending.push(envelope);
  if (apply(envelope)) render();
}

/** One event on the view's state; true when something shown may have changed. */
function apply(envelope) {
  const p = envelope.payload || {};
  const name = p.session_name;
  switch (envelope.type) {
    case "presence": {
      const known = sv.agents.get(p.agent_id) || { agent_id: p.agent_id, supervisor: false };
      sv.agents.set(p.agent_id, { ...known, status: p.status, capacity: p.capacity });
      break;
    }
    case "transfer_request":
      if (!sv.chats.has(name)) upsertWaiting(p);
      break;
    case "queue_changed": {
      const waiting = new Set(p.waiting || []);
      for (const queued of [...sv.queue.keys()]) if (!waiting.has(queued)) sv.queue.delete(queued);
      // One we have not heard join (before this page opened its stream): the snapshot.
      if ([...waiting].some((n) => !sv.queue.has(n))) loadOverview().catch(() => {});
      break;
    }
    case "assigned":
      sv.queue.delete(name);
      upsertChat(p, envelope.timestamp ? new Date(envelope.timestamp * 1000).toISOString() : null);
      break;
    case "status_change":
      if (p.status === "agent_active") {
        sv.queue.delete(name);
        upsertChat(p, null);
      } else {
        sv.chats.delete(name);
        if (p.status === "waiting_agent") upsertWaiting(p);
        else sv.queue.delete(name);
      }
      if (name === sv.open) renderView();
      break;
    case "abandoned":
      sv.queue.delete(name);
      break;
    case "new_message": {
      if (p.partial || !name) break;
      const chat = sv.chats.get(name);
      if (chat) chat.lastActivity = Date.parse(p.timestamp) || Date.now();
      if (name === sv.open) addViewed({ ...p, id: p.message_id });
      break;
    }
    case "note":
      if (name === sv.open) addViewed(noteMessage(p));
      break;
    case "reset":
      loadOverview().catch(() => {});
      return false;
    default:
      return false;
  }
  return true;
}

// --- Rendering ----------------------------------------------------------------------------

function render() {
  renderLists(sv, openView);
}

// --- One chat, read-only --------------------------------------------------------------------

async function openView(name) {
  sv.open = name;
  sv.confirming = null;
  sv.messages = new Map();
  $("sv-transcript").replaceChildren();
  renderView();
  render();
  // On a phone the view is below the lists: bring it into sight.
  if (window.matchMedia("(max-width: 760px)").matches) $("sv-conv").scrollIntoView();
  try {
    const [messages, notes] = await Promise.all([
      api(`${sessionPath(name)}/messages`),
      api(`${sessionPath(name)}/notes`),
    ]);
    if (sv.open !== name) return;
    for (const m of messages) addViewed(m);
    for (const n of notes) addViewed(noteMessage(n));
  } catch (error) {
    $("sv-error").textContent = `Transcript: ${error.message}`;
  }
}

function closeView() {
  sv.open = null;
  renderView();
  render();
}

function renderView() {
  const chat = sv.open ? sv.chats.get(sv.open) : null;
  const holder = chat ? chat.agent_id : null;
  const asked = sv.confirming;
  // The view closed, or the chat moved, while the question was open: it is asked again.
  if (asked && (asked.name !== sv.open || asked.holder !== holder)) sv.confirming = null;
  $("sv-confirm").hidden = !sv.confirming;
  $("sv-conv").hidden = !sv.open;
  $("sv-view-empty").hidden = Boolean(sv.open);
  if (!sv.open) return;
  $("sv-view-title").textContent = chat ? chat.label : sv.open;
  $("sv-view-title").title = sv.open;
  $("sv-view-status").textContent = chat
    ? `With ${chat.agent_id === state.agentId ? "you" : chat.agent_id} · you are watching`
    : "No longer with an agent";
  const other = holder && holder !== state.agentId;
  $("sv-takeover").hidden = !other || Boolean(sv.confirming);
  $("sv-takeover").textContent = other ? `Take over from ${holder}` : "Take over";
  $("sv-whisper").hidden = !other;
  $("sv-whisper-input").placeholder = other
    ? `Whisper to ${holder}… (the customer never sees it)`
    : "";
  $("sv-whisper-label").textContent = other ? `Whisper to ${holder}` : "Whisper";
}

function addViewed(m) {
  if (!m.id || sv.messages.has(m.id)) return;
  sv.messages.set(m.id, m);
  const when = Date.parse(m.timestamp) || 0;
  const list = $("sv-transcript");
  let before = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    const other = sv.messages.get(node.dataset.messageId);
    if (!other || (Date.parse(other.timestamp) || 0) <= when) break;
    before = node;
  }
  const li = messageItem(m);
  list.insertBefore(li, before);
  if (!before) li.scrollIntoView({ block: "end" });
}

async function whisper(event) {
  event.preventDefault();
  const input = $("sv-whisper-input");
  const content = input.value.trim();
  const name = sv.open;
  if (!content || !name) return;
  input.value = "";
  try {
    const note = await api(`${sessionPath(name)}/notes`, { method: "POST", body: { content } });
    if (sv.open === name) addViewed(noteMessage(note));
    $("sv-error").textContent = "";
  } catch (error) {
    if (!input.value) input.value = content;
    $("sv-error").textContent = `Not sent: ${error.message}`;
  }
}

/** A takeover ends the agent's handling of the chat: asked once more, naming who loses it. */
function askTakeOver() {
  const chat = sv.open ? sv.chats.get(sv.open) : null;
  if (!chat) return;
  sv.confirming = { name: sv.open, holder: chat.agent_id };
  $("sv-confirm-text").textContent =
    `Take ${chat.label} from ${chat.agent_id}? The chat moves to your desk, ` +
    `${chat.agent_id}'s page drops it, and ${chat.label} sees you join.`;
  renderView();
  $("sv-confirm").scrollIntoView({ block: "nearest" });
  $("sv-confirm-yes").focus({ preventScroll: true });
}

function cancelTakeOver() {
  sv.confirming = null;
  renderView();
}

async function takeOver() {
  const asked = sv.confirming;
  const name = sv.open;
  const chat = name ? sv.chats.get(name) : null;
  if (!chat || !asked || asked.name !== name) return cancelTakeOver();
  const button = $("sv-confirm-yes");
  button.disabled = true;
  try {
    await api(`/api/supervisor/sessions/${encodeURIComponent(name)}/takeover`, {
      method: "POST",
      // Whom the supervisor agreed to take it from: if it moved meanwhile, a 409 says so.
      body: { expected_holder: asked.holder },
    });
    upsertChat({ session_name: name, agent_id: state.agentId }, null);
    closeView();
    if (sv.onTakenOver) sv.onTakenOver(name, chat.label, chat.agent_id);
  } catch (error) {
    $("sv-error").textContent = `Could not take over: ${error.message}`;
  } finally {
    button.disabled = false;
    cancelTakeOver(); // asked and answered (a closed view has closed it already)
  }
}

// --- Starting and stopping -------------------------------------------------------------------

/** Switch between the agent's own desk and the live view. */
export function showSupervision(on) {
  $("supervise").hidden = !on;
  $("desk").hidden = on;
  $("supervise-toggle").setAttribute("aria-pressed", String(on));
  $("supervise-toggle").textContent = on ? "My desk" : "Team live view";
}

/**
 * For a supervisor: the toggle, the snapshot and the stream. `onTakenOver(name, label,
 * from)`: after a takeover, the page shows the chat on the supervisor's own desk.
 */
export function startSupervisor({ onTakenOver }) {
  sv.onTakenOver = onTakenOver;
  $("supervise-toggle").hidden = false;
  clearInterval(sv.tick);
  sv.tick = setInterval(tickLists, 1000);
  let first = true;
  sv.stream = new LiveStream("/api/supervisor/events", {
    onEvent,
    // The snapshot once the stream is attached: nothing falls between the two.
    onState: (connState) => {
      if (connState !== "live" || !first) return;
      first = false;
      loadOverview().catch((error) => {
        $("sv-error").textContent = `Team view: ${error.message}`;
      });
    },
    onReopen: () => loadOverview().catch(() => {}),
    token: () => state.token,
  });
  sv.stream.start();
}

export function stopSupervisor() {
  if (sv.stream) sv.stream.stop();
  sv.stream = null;
  clearInterval(sv.tick);
  sv.open = null;
  sv.agents.clear();
  sv.queue.clear();
  sv.chats.clear();
  $("supervise-toggle").hidden = true;
  showSupervision(false);
  $("desk").hidden = true;
}

export function wireSupervisor() {
  $("supervise-toggle").addEventListener("click", () => showSupervision($("supervise").hidden));
  $("sv-view-close").addEventListener("click", closeView);
  $("sv-takeover").addEventListener("click", askTakeOver);
  $("sv-confirm-yes").addEventListener("click", takeOver);
  $("sv-confirm-no").addEventListener("click", cancelTakeOver);
  $("sv-whisper").addEventListener("submit", whisper);
  enterSends($("sv-whisper-input"), $("sv-whisper"));
}
