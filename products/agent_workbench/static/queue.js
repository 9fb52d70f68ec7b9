// The queue: waiting customers, the new-request badge and the title, taking a chat over.

import { formatDuration } from "/shared/ui.js";
import { holdSession, loadTranscript, selectSession } from "/static/chats.js";
import { $, BASE_TITLE, api, customerName, sessionPath, state } from "/static/common.js";

// --- New-request badge and title --------------------------------------------------------

export function unseenCount() {
  let count = 0;
  for (const name of state.queue.keys()) if (!state.seen.has(name)) count += 1;
  return count;
}

function unreadCount() {
  let count = 0;
  for (const held of state.held.values()) count += held.unread;
  return count;
}

export function renderUnseen() {
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

export function markQueueSeen() {
  state.seen = new Set(state.queue.keys());
  renderUnseen();
}

// --- The queue --------------------------------------------------------------------------

/** A notice above the queue; an error one (`key`) goes away once that thing works again. */
export function queueNotice(text, key = "") {
  $("queue-notice").textContent = text;
  $("queue-notice").dataset.key = key;
}

export function clearQueueError(key) {
  if ($("queue-notice").dataset.key === key) queueNotice("");
}

export function renderQueue() {
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

export function tickQueue() {
  const now = Date.now();
  for (const entry of state.queue.values()) {
    entry.el.querySelector(".q-waited").textContent = formatDuration((now - entry.waitStart) / 1000);
  }
}

/** Add or update a waiting session (a queue GET row or a transfer_request payload). */
export function upsertQueue(s) {
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

export function removeFromQueue(name) {
  const entry = state.queue.get(name);
  if (!entry) return;
  entry.el.remove();
  state.queue.delete(name);
  renderQueue();
}

export async function loadQueue() {
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
