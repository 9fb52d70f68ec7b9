// The agent workbench: sign in, watch the queue live, get or take chats, talk, release,
// close. Plain ES module, no build step. The sign-in survives a reload (sessionStorage);
// the chats held always come from the server (a new tab shows the same ones).

import { LiveStream } from "/shared/stream.js";
import { typingSignals } from "/shared/typing.js";
import { enterSends, lengthCounter, loadLimits, markSeen, readSaved, setConnection } from "/shared/ui.js";
import { alertInBackground, alertsWanted, askForAlerts } from "/static/alerts.js";
import { cannedReplies } from "/static/canned.js";
import {
  addMessage,
  askTransfer,
  dropSession,
  finish,
  holdSession,
  loadMine,
  loadTranscript,
  readOpenChat,
  renderConversation,
  renderMine,
  selectSession,
  sendReply,
  showTyping,
  wireAttachments,
} from "/static/chats.js";
import {
  $,
  AUTH_KEY,
  STATUS_WORDS,
  api,
  customerName,
  noteMessage,
  sessionPath,
  state,
} from "/static/common.js";
import {
  loadQueue,
  markQueueSeen,
  queueNotice,
  removeFromQueue,
  renderQueue,
  renderUnseen,
  tickQueue,
  unseenCount,
  upsertQueue,
} from "/static/queue.js";
import { clearLeft, loadLeft, onLeftEvent } from "/static/left.js";
import { showSupervision, startSupervisor, stopSupervisor, wireSupervisor } from "/static/supervisor.js";
import { applyPresence, loadTeam, setPresence } from "/static/team.js";

// --- Events -----------------------------------------------------------------------------

function onEvent(envelope) {
  const p = envelope.payload || {};
  if (onLeftEvent(envelope)) return;
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
      let what = `${customerName(p)} was assigned to you`;
      if (p.transferred_from) {
        what =
          `${customerName(p)} was transferred to you by ${p.transferred_from}` +
          (p.note ? `: “${p.note}”` : "");
      } else if (p.taken_over_from) {
        what = `You took over ${customerName(p)} from ${p.taken_over_from}`;
      }
      queueNotice(what);
      alertInBackground(what, "assigned");
      if (!state.current) selectSession(p.session_name);
      break;
    }
    case "taken_over": {
      // A supervisor took this chat: it leaves this agent's list, saying who and why.
      const label = state.held.get(p.session_name)?.label || customerName(p);
      dropSession(p.session_name);
      queueNotice(`${p.by} (supervisor) took over your chat with ${label}`);
      alertInBackground(`${p.by} took over your chat with ${label}`, "taken_over");
      break;
    }
    case "abandoned":
      removeFromQueue(p.session_name);
      queueNotice(`${customerName(p)} left the queue`);
      break;
    case "presence":
      applyPresence(p);
      break;
    case "note": {
      const held = state.held.get(p.session_name);
      if (!held) break;
      addMessage(p.session_name, noteMessage(p));
      // A colleague's note (a supervisor's whisper) on a chat this agent holds: said aloud.
      if (p.agent_id !== state.agentId) {
        queueNotice(`Note from ${p.agent_id} on ${held.label}`);
        alertInBackground(`${p.agent_id} on ${held.label}: ${p.content}`, "note");
      }
      break;
    }
    case "typing":
      if (p.who === "customer") showTyping(p);
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
    await loadLeft();
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
  if (state.roles.includes("supervisor")) startSupervisor({ onTakenOver: tookOver });
  resync();
}

/** After a supervisor's takeover: the chat on the supervisor's own desk, open. */
function tookOver(name, label, from) {
  showSupervision(false);
  holdSession({ session_name: name, status: "agent_active", display_name: label });
  selectSession(name);
  loadTranscript(name);
  queueNotice(`You took over ${label} from ${from}`);
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

export function logout(message) {
  if (state.stream) state.stream.stop();
  state.stream = null;
  stopSupervisor();
  clearLeft();
  state.roles = [];
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
    state.roles = answer.roles || [];
    sessionStorage.setItem(
      AUTH_KEY,
      JSON.stringify({ agentId: state.agentId, token: state.token, roles: state.roles }),
    );
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
  wireSupervisor();
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
  wireAttachments();
  loadLimits(api).then((limits) => {
    state.limits = limits;
    state.counter.render();
  });
  input.addEventListener("input", () => {
    if ($("conv-error").textContent.startsWith("Too long") && !state.counter.tooLong()) {
      $("conv-error").textContent = "";
    }
  });
  // Never while writing an internal note: the customer must not learn of it.
  const typing = typingSignals(
    input,
    () => state.held.get(state.current)?.status === "agent_active" && !$("note-mode").checked,
    (on) => api(`${sessionPath(state.current)}/typing`, { method: "POST", body: { typing: on } }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || !state.current) return;
    typing.sent();
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
  enterSends(input, form, canned.onKey); // the canned-replies picker gets the key first

  setConnection("idle");
  const saved = readSaved(AUTH_KEY);
  if (saved && saved.agentId && saved.token) {
    state.agentId = saved.agentId;
    state.token = saved.token;
    state.roles = Array.isArray(saved.roles) ? saved.roles : [];
    startDesk();
  }
}

init();
