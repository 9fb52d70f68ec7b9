// The supervisor's three lists, drawn from the live view's state (supervisor.js keeps it):
// the team with presence and load, the queue with waits, the active chats with idle times.

import { formatDuration } from "/shared/ui.js";
import { $, state, supervisorTag } from "/static/common.js";

function load(sv, agentId) {
  let count = 0;
  for (const chat of sv.chats.values()) if (chat.agent_id === agentId) count += 1;
  return count;
}

/**
 * The three lists (the team, the queue, the active chats) from the view's state `sv`;
 * `openChat(name)` opens one read-only.
 */
export function renderLists(sv, openChat) {
  const rows = [...sv.agents.values()]
    .sort((a, b) => a.agent_id.localeCompare(b.agent_id))
    .map((a) => {
      const tr = document.createElement("tr");
      tr.dataset.agent = a.agent_id;
      tr.dataset.status = a.status;
      const who = document.createElement("td");
      who.textContent = a.agent_id === state.agentId ? `${a.agent_id} (you)` : a.agent_id;
      if (a.supervisor) who.append(" ", supervisorTag());
      const status = document.createElement("td");
      status.className = "sv-status";
      status.textContent = a.status;
      const chats = document.createElement("td");
      const held = load(sv, a.agent_id);
      chats.className = "sv-load";
      chats.textContent = `${held}/${a.capacity}`;
      chats.dataset.full = String(held >= a.capacity);
      tr.append(who, status, chats);
      return tr;
    });
  $("sv-agents").replaceChildren(...rows);
  const online = [...sv.agents.values()].filter((a) => a.status === "online").length;
  $("sv-online").textContent = `${online} online`;

  const waiting = [...sv.queue.values()].sort((a, b) => a.waitStart - b.waitStart);
  $("sv-queue").replaceChildren(
    ...waiting.map((q) => {
      const li = document.createElement("li");
      li.className = "sv-item q-item sv-waiting";
      li.dataset.session = q.session_name;
      li.append(line(q.label, q.reason), stamp("q-waited sv-waited", "waited"));
      li.dataset.since = String(q.waitStart);
      return li;
    }),
  );
  $("sv-queue-length").textContent = String(waiting.length);
  $("sv-queue-empty").hidden = waiting.length > 0;

  const chats = [...sv.chats.values()].sort((a, b) => a.label.localeCompare(b.label));
  $("sv-chats").replaceChildren(
    ...chats.map((c) => {
      const li = document.createElement("li");
      li.className = "sv-item sv-chat";
      li.dataset.session = c.session_name;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sv-open";
      button.setAttribute("aria-current", String(c.session_name === sv.open));
      button.setAttribute("aria-label", `Open ${c.label} (with ${c.agent_id}) read-only`);
      button.append(line(c.label, `with ${c.agent_id}`), stamp("sv-idle", "last activity"));
      button.dataset.since = String(c.lastActivity);
      button.addEventListener("click", () => openChat(c.session_name));
      li.append(button);
      return li;
    }),
  );
  $("sv-chats-count").textContent = String(chats.length);
  $("sv-chats-empty").hidden = chats.length > 0;
  tickLists();
}

function line(title, sub) {
  const main = document.createElement("span");
  main.className = "q-main";
  const name = document.createElement("span");
  name.className = "q-name";
  name.textContent = title;
  const reason = document.createElement("span");
  reason.className = "q-reason";
  reason.textContent = sub;
  main.append(name, reason);
  return main;
}

function stamp(className, title) {
  const span = document.createElement("span");
  span.className = className;
  span.title = title;
  return span;
}

/** Waits and idle times count up every second, from the times the server gave. */
export function tickLists() {
  const now = Date.now();
  for (const el of document.querySelectorAll("#sv-queue [data-since], #sv-chats [data-since]")) {
    const seconds = (now - Number(el.dataset.since)) / 1000;
    const out = el.querySelector(".sv-waited, .sv-idle");
    const text = formatDuration(seconds);
    out.textContent = out.className === "sv-idle" ? `idle ${text}` : text;
  }
}
