// The status bar: who the customer is talking to, the place in the queue and the wait.

import { formatDuration } from "/shared/ui.js";
import { $, state } from "/static/common.js";

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

export function renderStatus() {
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
export function applySession(s) {
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
