// Small view helpers both pages use.

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/**
 * Enter in `input` sends `form`; Shift+Enter is a new line; never while an IME is composing
 * (Chinese input: its Enter picks a word; keyCode 229 where `isComposing` is not set).
 * `first(event)`, when given, sees each key before: true means it took the key.
 */
export function enterSends(input, form, first = () => false) {
  input.addEventListener("keydown", (event) => {
    if (first(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

/** What the page saved as JSON in sessionStorage under `key`; null if none or unreadable. */
export function readSaved(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

export function setConnection(connState) {
  const el = document.getElementById("connection");
  el.dataset.state = connState;
  el.textContent = {
    idle: "Not connected",
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
  }[connState];
}


/**
 * A length counter under a text box that never cuts what was typed or pasted: it shows
 * "n / limit" once the text is long, and `tooLong()` says what to tell the person.
 */
export function lengthCounter(input, counter, getLimit) {
  function render() {
    const limit = getLimit();
    const length = [...input.value].length;
    counter.hidden = length < limit * 0.8;
    counter.textContent = `${length} / ${limit}`;
    counter.dataset.over = String(length > limit);
  }
  input.addEventListener("input", render);
  render();
  return {
    render,
    tooLong() {
      const limit = getLimit();
      const length = [...input.value.trim()].length;
      return length > limit
        ? `Too long to send: ${length} characters, at most ${limit}. Please shorten it (nothing was cut).`
        : "";
    },
  };
}

/** The service's public limits (the message length), with a safe default. */
export async function loadLimits(api) {
  try {
    return await api("/api/limits");
  } catch {
    return { message_max_chars: 4000 };
  }
}

/** Message ids ("<ms>-<seq>") in order: negative, 0 or positive like a comparator. */
export function compareIds(a, b) {
  const [am, as] = String(a).split("-").map(Number);
  const [bm, bs] = String(b).split("-").map(Number);
  return am - bm || as - bs;
}

/**
 * "Seen" under the newest of `items` (elements with data-message-id) that `upTo` covers;
 * the mark moves, never more than one.
 */
export function markSeen(container, selector, upTo) {
  let last = null;
  for (const el of container.querySelectorAll(selector)) {
    if (compareIds(el.dataset.messageId, upTo) <= 0) last = el;
  }
  for (const old of container.querySelectorAll(".seen")) old.remove();
  if (!last) return;
  const seen = document.createElement("span");
  seen.className = "seen";
  seen.textContent = "Seen";
  last.append(seen);
}
