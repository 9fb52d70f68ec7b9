// After the chat: out of hours, leave a message; once closed, rate it.

import { $, api, sessionPath, showError, state } from "/static/common.js";
import { addMessage } from "/static/log.js";
import { renderStatus } from "/static/status.js";

// --- Out of hours: leave a message ----------------------------------------------------

export function showLeaveMessage(payload) {
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

export async function sendLeftMessage(event) {
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

export function renderStars() {
  for (const star of $("rating").querySelectorAll(".star")) {
    const on = Number(star.dataset.score) <= state.score;
    star.classList.toggle("on", on);
    star.setAttribute("aria-checked", String(Number(star.dataset.score) === state.score));
  }
  $("rating-send").disabled = state.rated || state.score === 0;
}

export async function sendRating(event) {
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
