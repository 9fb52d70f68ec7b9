// History: search the record (every conversation, also those Redis has forgotten) and read
// a whole transcript. Uses the token the workbench page keeps in sessionStorage.

import { attachmentView } from "/shared/attachments.js";
import { makeApi } from "/shared/http.js";
import { readSaved } from "/shared/ui.js";

const AUTH_KEY = "cs-agent-auth";
const $ = (id) => document.getElementById(id);

const auth = readSaved(AUTH_KEY);
const api = makeApi({
  getToken: () => auth && auth.token,
  unreachable: "the service cannot be reached",
  onUnauthorized: () => signedOut(),
});

let cursor = null;
let shown = 0;

function signedOut() {
  $("signed-out").hidden = false;
  $("search").hidden = true;
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function query() {
  const params = new URLSearchParams();
  const q = $("q").value.trim();
  if (q) params.set("q", q);
  if ($("status").value) params.set("status", $("status").value);
  if ($("agent").value.trim()) params.set("agent_id", $("agent").value.trim());
  if ($("from").value) params.set("from", `${$("from").value}T00:00:00Z`);
  if ($("to").value) params.set("to", `${$("to").value}T23:59:59Z`);
  return params;
}

function row(item) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "record-result";
  button.dataset.session = item.session_name;
  const title = document.createElement("span");
  title.className = "record-result-name";
  title.textContent = item.session_name;
  const meta = document.createElement("span");
  meta.className = "record-result-meta";
  const agent = item.agent_id ? ` · ${item.agent_id}` : "";
  const rating = item.rating_score ? ` · ★${item.rating_score}` : "";
  meta.textContent = `${when(item.last_at)} · ${item.status}${agent} · ${item.message_count} msg${rating}`;
  button.append(title, meta);
  if (item.snippet) {
    const snippet = document.createElement("span");
    snippet.className = "record-snippet";
    snippet.textContent = item.snippet;
    button.append(snippet);
  }
  button.addEventListener("click", () => open(item.session_name, button));
  li.append(button);
  return li;
}

async function search(more = false) {
  $("search-error").textContent = "";
  const params = query();
  if (more && cursor) params.set("cursor", cursor);
  let page;
  try {
    page = await api(`/api/conversations?${params}`);
  } catch (error) {
    $("search-error").textContent = error.message;
    return;
  }
  if (!more) {
    $("results").replaceChildren();
    shown = 0;
  }
  for (const item of page.items) $("results").append(row(item));
  shown += page.items.length;
  cursor = page.next_cursor;
  $("more").hidden = !cursor;
  $("result-count").textContent = String(shown);
  $("results-empty").hidden = shown > 0;
}

const LABELS = { customer: "Customer", bot: "Bot", agent: "Agent", system: "Notice" };

async function open(name, button) {
  for (const el of document.querySelectorAll(".record-result[aria-current]")) el.removeAttribute("aria-current");
  button.setAttribute("aria-current", "true");
  let found;
  try {
    found = await api(`/api/conversations/${encodeURIComponent(name)}`);
  } catch (error) {
    $("transcript-meta").textContent = error.message;
    return;
  }
  $("transcript-title").textContent = name;
  const rating = found.rating_score ? ` · rated ${found.rating_score}/5` : "";
  $("transcript-meta").textContent =
    `${when(found.created_at)} – ${when(found.last_at)} · ${found.status}${rating}`;
  const log = $("transcript");
  log.replaceChildren();
  for (const m of found.messages) {
    const li = document.createElement("li");
    li.className = `msg msg-${m.sender}`;
    const who = document.createElement("span");
    who.className = "who";
    const label = m.sender === "agent" ? `Agent ${m.sender_id}` : LABELS[m.sender] || m.sender;
    who.textContent = `${label} · ${when(m.timestamp)}`;
    const text = document.createElement("div");
    text.className = "bubble";
    text.textContent = m.content;
    if (m.attachment) {
      const path = `/api/sessions/${encodeURIComponent(name)}`;
      text.replaceChildren(attachmentView(path, m.attachment, () => auth && auth.token));
    }
    li.append(who, text);
    log.append(li);
  }
  $("transcript-empty").hidden = found.messages.length > 0;
  $("transcript-empty").textContent = "No messages.";
}

if (!auth || !auth.token) {
  signedOut();
} else {
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    search(false);
  });
  $("more").addEventListener("click", () => search(true));
  search(false);
}
