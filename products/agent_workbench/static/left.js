// Messages customers left out of hours (GET /api/left-messages): name, contact, text, when;
// "Done" takes one off every agent's list. Live from the broadcast channel: `left_message`
// (one just left), `left_messages` (hours began with these waiting), `left_message_done`.

import { alertInBackground } from "/static/alerts.js";
import { $, api } from "/static/common.js";

const left = new Map(); // session name -> {session_name, name, contact, text, left_at_ms}

function when(ms) {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return "";
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function item(m) {
  const li = document.createElement("li");
  li.className = "left-item";
  li.dataset.session = m.session_name;
  const head = document.createElement("div");
  head.className = "left-head";
  const who = document.createElement("strong");
  who.textContent = m.name;
  const time = document.createElement("time");
  time.dateTime = new Date(m.left_at_ms).toISOString();
  time.textContent = when(m.left_at_ms);
  head.append(who, time);
  const contact = document.createElement("span");
  contact.className = "left-contact";
  contact.textContent = m.contact;
  const text = document.createElement("p");
  text.className = "left-text";
  text.textContent = m.text;
  const done = document.createElement("button");
  done.type = "button";
  done.className = "secondary small";
  done.textContent = "Done";
  done.setAttribute("aria-label", `Mark the message from ${m.name} as done`);
  done.addEventListener("click", () => markDone(m.session_name, done));
  li.append(head, contact, text, done);
  return li;
}

export function renderLeft() {
  const items = [...left.values()].sort((a, b) => a.left_at_ms - b.left_at_ms).map(item);
  $("left").replaceChildren(...items);
  $("left-count").textContent = String(items.length);
  $("left-empty").hidden = items.length > 0;
}

export function leftNotice(text) {
  $("left-notice").textContent = text;
}

export async function loadLeft() {
  const rows = await api("/api/left-messages");
  left.clear();
  for (const m of rows) left.set(m.session_name, m);
  renderLeft();
}

async function markDone(name, button) {
  button.disabled = true;
  try {
    await api(`/api/left-messages/${encodeURIComponent(name)}/done`, { method: "POST" });
    left.delete(name);
    renderLeft();
  } catch (error) {
    button.disabled = false;
    if (error.status === 404) {
      left.delete(name); // someone else handled it
      renderLeft();
    } else {
      leftNotice(`Not marked done: ${error.message}`);
    }
  }
}

/** The page's event stream hands these over; true when the event was one of them. */
export function onLeftEvent(envelope) {
  const p = envelope.payload || {};
  switch (envelope.type) {
    case "left_message":
      left.set(p.session_name, p);
      renderLeft();
      leftNotice(`${p.name} left a message`);
      alertInBackground(`${p.name} left a message: ${p.text}`, "left");
      return true;
    case "left_messages":
      for (const m of p.messages || []) left.set(m.session_name, m);
      renderLeft();
      leftNotice(
        `Hours have begun: ${p.count} message${p.count === 1 ? "" : "s"} left while we were closed`,
      );
      alertInBackground(`Hours have begun: ${p.count} left message(s) waiting`, "left");
      return true;
    case "left_message_done":
      left.delete(p.session_name);
      renderLeft();
      return true;
    default:
      return false;
  }
}

export function clearLeft() {
  left.clear();
  renderLeft();
  leftNotice("");
}
