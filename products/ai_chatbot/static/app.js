// The customer chat page: start a chat, talk to the bot, ask for a human ("转人工").
// Plain ES modules, no build step. State survives a reload through sessionStorage.

import { wireAttach } from "/shared/attachments.js";
import { LiveStream } from "/shared/stream.js";
import { typingSignals } from "/shared/typing.js";
import { enterSends, lengthCounter, loadLimits, markSeen, readSaved, setConnection } from "/shared/ui.js";
import { renderStars, sendLeftMessage, sendRating, showLeaveMessage } from "/static/aftercare.js";
import { $, STORAGE_KEY, api, sessionPath, showError, state } from "/static/common.js";
import {
  addMessage,
  addNotice,
  hideTyping,
  peerTyping,
  readAgain,
  senderLabel,
  showTyping,
} from "/static/log.js";
import { applySession, renderStatus } from "/static/status.js";

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

// --- Wiring ---------------------------------------------------------------------------

function init() {
  $("start-chat").addEventListener("click", startChat);
  $("new-chat").addEventListener("click", () => {
    endSession("");
    startChat();
  });
  $("escalate").addEventListener("click", escalate);
  $("rating").addEventListener("submit", sendRating);
  document.addEventListener("visibilitychange", readAgain);
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
  enterSends(input, form);

  setConnection("idle");
  const saved = readSaved(STORAGE_KEY);
  if (saved && saved.name && saved.token) resume(saved);
}

init();
