// The chats this agent holds: the list, the open conversation, messages and notes, read
// receipts, transfer, release and close.

import { attachmentView, wireAttach } from "/shared/attachments.js";
import { typingIndicator } from "/shared/typing.js";
import { compareIds, formatTime, markSeen } from "/shared/ui.js";
import { alertInBackground } from "/static/alerts.js";
import {
  $,
  api,
  customerName,
  noteMessage,
  senderLabel,
  sessionPath,
  state,
} from "/static/common.js";
import { clearQueueError, queueNotice, renderUnseen } from "/static/queue.js";
import { loadTeam, renderTeam } from "/static/team.js";

/** The open chat's customer "… is typing" (a signal for another chat is not shown). */
const customerTyping = typingIndicator($("conv-typing"), $("conv-typing").querySelector(".typing-text"));

export function showTyping(p) {
  const held = state.held.get(p.session_name);
  if (!held || p.session_name !== state.current) return;
  if (p.typing) customerTyping.show(`${held.label} is typing`);
  else customerTyping.hide();
}

// --- Held sessions ----------------------------------------------------------------------

/** A chat this agent holds (a session row or event payload); `unread` from the server. */
export function holdSession(s) {
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

export function dropSession(name) {
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

export function renderMine() {
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
export function readOpenChat() {
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

export function selectSession(name) {
  if (name !== state.current) customerTyping.hide();
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

export function renderConversation() {
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

export function messageItem(m) {
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
  if (m.attachment) {
    bubble.replaceChildren(attachmentView(sessionPath(m.session_name || state.current), m.attachment, () => state.token));
  }
  const time = document.createElement("time");
  time.dateTime = m.timestamp;
  time.textContent = formatTime(m.timestamp);
  li.append(who, bubble, time);
  return li;
}

/** A message for a held session; each id shows once. */
export function addMessage(name, raw) {
  const held = state.held.get(name);
  const id = raw.id || raw.message_id;
  if (!held || !id || held.messages.has(id)) return;
  const m = { ...raw, id };
  held.messages.set(id, m);
  if (m.sender === "customer" && name === state.current) customerTyping.hide();
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

export async function loadTranscript(name) {
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
export async function askTransfer() {
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
export async function finish(action) {
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

export async function sendReply(content) {
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
export async function loadMine() {
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

/** The paperclip: a picture or a PDF to the customer of the open chat. */
export function wireAttachments() {
  wireAttach({
    button: $("attach"),
    input: $("attach-input"),
    sessionPath: () => sessionPath(state.current),
    getToken: () => state.token,
    getMaxBytes: () => state.limits.attachment_max_bytes,
    onSent: (message) => addMessage(message.session_name, message),
    onError: (text) => {
      $("conv-error").textContent = text;
    },
  });
}
