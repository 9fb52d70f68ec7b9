// The customer chat page: start a chat, talk to the bot, ask for a human ("转人工").
// Plain ES module, no build step. State survives a reload through sessionStorage.

import { attachmentView, wireAttach } from "/shared/attachments.js";
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
import { typingIndicator, typingSignals } from "/shared/typing.js";

const STORAGE_KEY = "cs-chat-session";
const TYPING_STALE_MS = 30000;

const $ = (id) => document.getElementById(id);
// The agent's "… is typing".
const peerTyping = typingIndicator($("peer-typing"), $("peer-typing").querySelector(".typing-text"));

const state = {
  name: null,
  token: null,
  status: null,
  agentId: null,
  hadAgent: false,
  waitStart: null,
  waitingSince: null,
  queuePosition: null,
  estimatedWait: null,
  rated: false,
  score: 0,
  limits: { message_max_chars: 4000 },
  counter: null,
  stream: null,
  messages: new Set(), // message ids on screen
  notices: new Set(), // event ids of status notices on screen
  typingTimer: null,
  waitTimer: null,
};

// --- HTTP -----------------------------------------------------------------------------

const api = makeApi({
  getToken: () => state.token,
  unreachable: "The service cannot be reached right now. Please try again.",
});

const sessionPath = () => `/api/sessions/${encodeURIComponent(state.name)}`;

// --- Rendering ------------------------------------------------------------------------

function senderLabel(sender, senderId) {
  if (sender === "customer") return "You";
  if (sender === "bot") return "Bot";
  if (sender === "agent") return senderId ? `Agent ${senderId}` : "Agent";
  return "Notice";
}

/** Insert `li` so that the log stays in timestamp order (ties keep arrival order). */
function insertOrdered(li, when) {
  const log = $("log");
  li.dataset.ts = String(when);
  let before = null;
  for (let node = log.lastElementChild; node; node = node.previousElementSibling) {
    if (Number(node.dataset.ts) <= when) break;
    before = node;
  }
  log.insertBefore(li, before);
  if (!before) li.scrollIntoView({ block: "end" });
}

/** A message from the transcript, a POST answer or the stream; each id shows once. */
function addMessage(m) {
  const id = m.id || m.message_id;
  if (!id || state.messages.has(id)) return;
  state.messages.add(id);
  const li = document.createElement("li");
  li.className = `msg msg-${m.sender}`;
  li.dataset.messageId = id;
  li.dataset.sender = m.sender;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = senderLabel(m.sender, m.sender_id);
  const bubble = document.createElement("p");
  bubble.className = "bubble";
  bubble.textContent = m.content;
  if (m.attachment) bubble.replaceChildren(attachmentView(sessionPath(), m.attachment, () => state.token));
  const time = document.createElement("time");
  time.dateTime = m.timestamp;
  time.textContent = formatTime(m.timestamp);
  li.append(who, bubble, time);
  insertOrdered(li, Date.parse(m.timestamp) || Date.now());
  if (m.sender === "bot") hideTyping();
  if (m.sender === "agent") {
    peerTyping.hide();
    readSoon(id);
  }
}

// --- Read receipts ----------------------------------------------------------------------

let readTimer = null;
let readUpTo = null;

/** Tell the agent what we have seen (once the page is visible, a moment after). */
function readSoon(id) {
  if (!readUpTo || compareIds(id, readUpTo) > 0) readUpTo = id;
  if (document.hidden) return;
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const upTo = readUpTo;
    if (!upTo || !state.name) return;
    api(`${sessionPath()}/read`, { method: "POST", body: { up_to: upTo } }).catch(() => {});
  }, 300);
}

function addNotice(key, text, timestamp) {
  if (key && state.notices.has(key)) return;
  if (key) state.notices.add(key);
  const li = document.createElement("li");
  li.className = "notice";
  li.textContent = text;
  // The envelope's timestamp has whole seconds only: never place a notice above the
  // messages that led to it.
  const last = $("log").lastElementChild;
  const lastTs = last ? Number(last.dataset.ts) : 0;
  insertOrdered(li, Math.max(lastTs, timestamp ? timestamp * 1000 : Date.now()));
}

function showTyping(delta) {
  const box = $("typing");
  const text = box.querySelector(".typing-text");
  text.textContent = box.hidden ? delta : text.textContent + delta;
  box.hidden = false;
  box.scrollIntoView({ block: "end" });
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, TYPING_STALE_MS);
}

function hideTyping() {
  const box = $("typing");
  box.hidden = true;
  box.querySelector(".typing-text").textContent = "";
  clearTimeout(state.typingTimer);
}

function statusText() {
  switch (state.status) {
    case "ai":
      return state.hadAgent
        ? "Back to the bot · 已转回智能客服"
        : "Chatting with the bot · 智能客服";
    case "waiting_agent": {
      if (!state.queuePosition) return "Waiting for an agent · 排队中";
      let wait = "";
      if (typeof state.estimatedWait === "number") {
        wait =
          state.estimatedWait < 60
            ? " · less than a minute"
            : ` · about ${Math.round(state.estimatedWait / 60)} min`;
      }
      return `Waiting for an agent · you are number ${state.queuePosition} in the queue${wait}`;
    }
    case "agent_active":
      return `Agent ${state.agentId || ""} joined · 人工客服已接入`;
    case "abandoned":
      return "You left the queue · write a message or ask for a human to join it again";
    case "closed":
      return "This chat has ended · 会话已结束";
    default:
      return "";
  }
}

function tickWaited() {
  const el = $("waited");
  if (state.status !== "waiting_agent" || state.waitStart === null) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.textContent = `waited ${formatDuration((Date.now() - state.waitStart) / 1000)}`;
}

function renderStatus() {
  $("status-text").textContent = statusText();
  document.querySelector(".status-bar").dataset.status = state.status || "";
  $("escalate").disabled = state.status !== "ai" && state.status !== "abandoned";
  const closed = state.status === "closed";
  $("message-input").disabled = closed;
  $("send").disabled = closed;
  $("composer").hidden = closed;
  $("rating").hidden = !closed;
  $("rating-thanks").hidden = !state.rated;
  for (const el of $("rating").querySelectorAll(".star, textarea, #rating-send")) {
    if (state.rated) el.disabled = true;
  }
  clearInterval(state.waitTimer);
  tickWaited();
  if (state.status === "waiting_agent") state.waitTimer = setInterval(tickWaited, 1000);
}

/** Apply a session (GET answer or status_change payload); returns whether the status changed. */
function applySession(s) {
  const previous = state.status;
  const previousAgent = state.agentId;
  if (s.status === "agent_active") state.hadAgent = true;
  if (s.previous_status === "agent_active" && s.status === "ai") state.hadAgent = true;
  state.status = s.status;
  state.agentId = s.agent_id || null;
  if (s.status === "waiting_agent") {
    // One waiting period keeps its start: a replayed event's waited_seconds is stale.
    const samePeriod = s.waiting_since && s.waiting_since === state.waitingSince;
    if (!samePeriod || state.waitStart === null) {
      if (typeof s.waited_seconds === "number") {
        state.waitStart = Date.now() - s.waited_seconds * 1000;
      } else if (s.waiting_since) {
        state.waitStart = Date.parse(s.waiting_since);
      } else if (state.waitStart === null) {
        state.waitStart = Date.now();
      }
    }
    if (s.waiting_since) state.waitingSince = s.waiting_since;
    if (s.queue_position) state.queuePosition = s.queue_position;
  } else {
    state.waitStart = null;
    state.waitingSince = null;
    state.queuePosition = null;
    state.estimatedWait = null;
  }
  if (typeof s.rating === "number") state.rated = true;
  renderStatus();
  // A new agent on a chat already with one (a transfer, a supervisor's takeover) is news too.
  const newAgent = s.status === "agent_active" && previousAgent !== null && previousAgent !== s.agent_id;
  return previous !== null && (previous !== s.status || newAgent);
}

// --- Events ---------------------------------------------------------------------------

function onEvent(envelope) {
  const payload = envelope.payload || {};
  switch (envelope.type) {
    case "new_message":
      if (payload.partial) {
        if (payload.sender === "bot" && typeof payload.delta === "string") showTyping(payload.delta);
      } else {
        addMessage(payload);
      }
      break;
    case "status_change": {
      const changed = applySession(payload);
      if (changed) {
        const key = `${envelope.epoch}.${envelope.id}`;
        if (payload.status === "agent_active") {
          addNotice(key, `Agent ${payload.agent_id} joined the chat`, envelope.timestamp);
        } else if (payload.status === "ai" && payload.previous_status === "agent_active") {
          addNotice(key, "The agent left; the bot is back", envelope.timestamp);
        } else if (payload.status === "waiting_agent" && payload.previous_status !== "agent_active") {
          // (Back in the queue from an agent: the transcript's notice says why.)
          addNotice(key, "You asked for a human agent", envelope.timestamp);
        } else if (payload.status === "closed") {
          addNotice(key, "The chat was closed", envelope.timestamp);
        } else if (payload.status === "abandoned") {
          addNotice(key, "You left the queue", envelope.timestamp);
        }
      }
      break;
    }
    case "typing":
      if (payload.who !== "agent") break;
      if (payload.typing) peerTyping.show(`${senderLabel("agent", payload.agent_id)} is typing`);
      else peerTyping.hide();
      break;
    case "read":
      if (payload.reader === "agent" && payload.up_to) {
        markSeen($("log"), 'li.msg[data-sender="customer"]', payload.up_to);
      }
      break;
    case "queue_position":
      if (state.status === "waiting_agent" && payload.position) {
        state.queuePosition = payload.position;
        state.estimatedWait = payload.estimated_wait_seconds;
        renderStatus();
      }
      break;
    case "out_of_hours":
      showLeaveMessage(payload);
      break;
    case "reset":
      // The server could not replay what we missed: fetch the truth again.
      refresh();
      break;
    default:
      break; // notifications and future types: nothing to show yet
  }
}

let refreshing = null;

/** Session and transcript from the server (after a reload, a reset or a reconnect). */
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const [session, messages] = await Promise.all([
          api(sessionPath()),
          api(`${sessionPath()}/messages`),
        ]);
        applySession(session);
        if (session.status === "waiting_agent") {
          const place = await api(`${sessionPath()}/queue`);
          state.queuePosition = place.position;
          state.estimatedWait = place.estimated_wait_seconds;
        }
        for (const m of messages) {
          if (m.sender === "agent") state.hadAgent = true;
          addMessage(m);
        }
        renderStatus();
        showError("");
      } catch (error) {
        if (error.status === 404 && (await showEarlier())) return;
        if (error.status === 401 || error.status === 403 || error.status === 404) {
          endSession("Your previous chat is no longer available. Please start a new one.");
        } else {
          showError(error.message);
        }
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

// --- Session lifecycle ----------------------------------------------------------------

function showError(text) {
  $("chat-error").textContent = text;
}

function openChatView() {
  $("composer").hidden = false; // hidden while an earlier, ended chat is shown
  $("start").hidden = true;
  $("chat").hidden = false;
  $("new-chat").hidden = false;
  $("message-input").focus();
}

function follow() {
  state.stream = new LiveStream(`${sessionPath()}/events`, {
    onEvent,
    onState: setConnection,
    onReopen: (resumed) => {
      if (!resumed) refresh();
    },
    token: () => state.token,
  });
  state.stream.start();
}

async function resume(saved) {
  state.name = saved.name;
  state.token = saved.token;
  openChatView();
  await refresh();
  if (state.name) follow();
}

/** The live session is gone (Redis forgot it): show the earlier chat from the record,
 * read-only, with "New chat" to start again. False when the record has nothing either. */
async function showEarlier() {
  let past;
  try {
    past = await api(`/api/conversations/${encodeURIComponent(state.name)}`);
  } catch {
    return false;
  }
  if (state.stream) state.stream.stop();
  state.stream = null;
  for (const m of past.messages) addMessage(m);
  $("status-text").textContent = "This chat has ended. Here is your earlier conversation.";
  $("composer").hidden = true;
  setConnection("idle");
  state.name = null; // nothing to follow
  return true;
}

function endSession(message) {
  if (state.stream) state.stream.stop();
  state.stream = null;
  sessionStorage.removeItem(STORAGE_KEY);
  Object.assign(state, {
    name: null,
    token: null,
    status: null,
    agentId: null,
    hadAgent: false,
    rated: false,
    score: 0,
  });
  $("rating-comment").value = "";
  for (const el of $("rating").querySelectorAll(".star, textarea")) el.disabled = false;
  renderStars();
  state.messages.clear();
  state.notices.clear();
  clearInterval(state.waitTimer);
  $("log").replaceChildren();
  hideTyping();
  setConnection("idle");
  $("chat").hidden = true;
  $("new-chat").hidden = true;
  $("start").hidden = false;
  $("start-error").textContent = message || "";
}

async function startChat() {
  const button = $("start-chat");
  button.disabled = true;
  $("start-error").textContent = "";
  try {
    const displayName = $("display-name").value.trim();
    const created = await api("/api/sessions", {
      method: "POST",
      body: displayName ? { display_name: displayName } : {},
    });
    state.name = created.session_name;
    state.token = created.token;
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ name: state.name, token: state.token }));
    openChatView();
    applySession({ status: created.status });
    follow();
  } catch (error) {
    $("start-error").textContent = `Could not start a chat: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function send(content) {
  const result = await api(`${sessionPath()}/messages`, { method: "POST", body: { content } });
  addMessage(result.message);
  if (result.reply) addMessage(result.reply);
  if (result.status && result.status !== state.status) {
    applySession(result.escalated ? await api(sessionPath()) : { status: result.status });
  }
}

async function escalate() {
  const button = $("escalate");
  button.disabled = true;
  try {
    applySession(
      await api("/api/manual/escalate", { method: "POST", body: { session_name: state.name } }),
    );
    showError("");
  } catch (error) {
    showError(`Could not reach a human agent: ${error.message}`);
    renderStatus();
  }
}

// --- Out of hours: leave a message ----------------------------------------------------

function showLeaveMessage(payload) {
  const form = $("leave-message");
  const opens = payload.next_opening ? new Date(payload.next_opening) : null;
  $("leave-opening").textContent = opens
    ? `We open again on ${opens.toLocaleString([], {
        weekday: "short",
        day: "numeric",
        month: "short",
        hour: "2-digit",
        minute: "2-digit",
      })}. Leave a message and we will get back to you.`
    : "Leave a message and we will get back to you.";
  if (form.hidden) {
    form.hidden = false;
    $("leave-fields").hidden = false;
    $("leave-opening").hidden = false;
    $("leave-thanks").hidden = true;
    $("leave-send").disabled = false;
    $("leave-name").focus();
  }
  renderStatus();
}

async function sendLeftMessage(event) {
  event.preventDefault();
  const body = {
    name: $("leave-name").value.trim(),
    contact: $("leave-contact").value.trim(),
    text: $("leave-text").value.trim(),
  };
  if (!body.name || !body.contact || !body.text) {
    showError("Please fill in your name, how to reach you and your message.");
    return;
  }
  $("leave-send").disabled = true;
  try {
    addMessage(await api(`${sessionPath()}/leave-message`, { method: "POST", body }));
    $("leave-fields").hidden = true; // the message is in the transcript now
    $("leave-opening").hidden = true;
    $("leave-thanks").hidden = false;
    showError("");
  } catch (error) {
    $("leave-send").disabled = false;
    showError(`Message not sent: ${error.message}`);
  }
}

// --- Rating ---------------------------------------------------------------------------

function renderStars() {
  for (const star of $("rating").querySelectorAll(".star")) {
    const on = Number(star.dataset.score) <= state.score;
    star.classList.toggle("on", on);
    star.setAttribute("aria-checked", String(Number(star.dataset.score) === state.score));
  }
  $("rating-send").disabled = state.rated || state.score === 0;
}

async function sendRating(event) {
  event.preventDefault();
  if (!state.score || state.rated) return;
  $("rating-send").disabled = true;
  const comment = $("rating-comment").value.trim();
  try {
    await api(`${sessionPath()}/rating`, {
      method: "POST",
      body: comment ? { score: state.score, comment } : { score: state.score },
    });
    state.rated = true;
    showError("");
  } catch (error) {
    if (error.status === 409 && /rated already/.test(error.message)) state.rated = true;
    else showError(`Rating not sent: ${error.message}`);
  }
  renderStatus();
  renderStars();
}

// --- Wiring ---------------------------------------------------------------------------

function init() {
  $("start-chat").addEventListener("click", startChat);
  $("new-chat").addEventListener("click", () => {
    endSession("");
    startChat();
  });
  $("escalate").addEventListener("click", escalate);
  $("rating").addEventListener("submit", sendRating);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && readUpTo) readSoon(readUpTo);
  });
  $("leave-message").addEventListener("submit", sendLeftMessage);
  for (const star of $("rating").querySelectorAll(".star")) {
    star.addEventListener("click", () => {
      if (state.rated) return;
      state.score = Number(star.dataset.score);
      renderStars();
    });
  }

  const input = $("message-input");
  const form = $("composer");
  state.counter = lengthCounter(input, $("length"), () => state.limits.message_max_chars);
  input.addEventListener("input", () => {
    // The refusal goes away once the text fits.
    if ($("chat-error").textContent.startsWith("Too long") && !state.counter.tooLong()) {
      showError("");
    }
  });
  wireAttach({
    button: $("attach"),
    input: $("attach-input"),
    sessionPath,
    getToken: () => state.token,
    getMaxBytes: () => state.limits.attachment_max_bytes,
    onSent: addMessage,
    onError: showError,
  });
  loadLimits(api).then((limits) => {
    state.limits = limits;
    state.counter.render();
  });
  const typing = typingSignals(
    input,
    () => state.status === "agent_active",
    (on) => api(`${sessionPath()}/typing`, { method: "POST", body: { typing: on } }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || !state.name) return;
    const tooLong = state.counter.tooLong();
    if (tooLong) {
      showError(tooLong);
      return;
    }
    input.value = "";
    state.counter.render();
    try {
      typing.sent();
      await send(content);
      showError("");
    } catch (error) {
      if (!input.value) input.value = content; // give the text back
      state.counter.render();
      showError(`Not sent: ${error.message}`);
    }
  });
  input.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a new line; never while an IME is composing (Chinese input).
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  setConnection("idle");
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
  } catch {
    saved = null;
  }
  if (saved && saved.name && saved.token) resume(saved);
}

init();
