// The conversation on the customer page: messages and notices in time order, the bot's
// streamed reply and the agent's "… is typing", and the read receipts this side sends.

import { attachmentView } from "/shared/attachments.js";
import { typingIndicator } from "/shared/typing.js";
import { compareIds, formatTime } from "/shared/ui.js";
import { $, api, sessionPath, state } from "/static/common.js";

const TYPING_STALE_MS = 30000;

// The agent's "… is typing".
export const peerTyping = typingIndicator(
  $("peer-typing"),
  $("peer-typing").querySelector(".typing-text"),
);

export function senderLabel(sender, senderId) {
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
export function addMessage(m) {
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

export function addNotice(key, text, timestamp) {
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

export function showTyping(delta) {
  const box = $("typing");
  const text = box.querySelector(".typing-text");
  text.textContent = box.hidden ? delta : text.textContent + delta;
  box.hidden = false;
  box.scrollIntoView({ block: "end" });
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, TYPING_STALE_MS);
}

export function hideTyping() {
  const box = $("typing");
  box.hidden = true;
  box.querySelector(".typing-text").textContent = "";
  clearTimeout(state.typingTimer);
}

/** The page came back into view: say what arrived while it was hidden. */
export function readAgain() {
  if (!document.hidden && readUpTo) readSoon(readUpTo);
}
