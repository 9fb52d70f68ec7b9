// "… is typing", both ways (both pages use it). A typing signal is ephemeral on the server:
// never kept, never replayed; so the page sends one while the person types (at most one per
// SIGNAL_EVERY_MS) and the other side hides its indicator after SHOWN_FOR_MS without news.

export const SIGNAL_EVERY_MS = 2000;
export const SHOWN_FOR_MS = 6000;

/**
 * Call `send(typing)` while `input` is being typed in: true at most once per
 * SIGNAL_EVERY_MS while `wanted()` says the other side should know, false once when the box
 * is emptied without sending. Failures are ignored: a lost signal only shows late.
 */
export function typingSignals(input, wanted, send) {
  let last = 0;
  const quietly = (typing) => Promise.resolve(send(typing)).catch(() => {});
  input.addEventListener("input", () => {
    if (!wanted()) return;
    if (!input.value.trim()) {
      if (last) quietly(false);
      last = 0;
      return;
    }
    const now = Date.now();
    if (now - last < SIGNAL_EVERY_MS) return;
    last = now;
    quietly(true);
  });
  // A sent message ends the typing: the next keystroke signals again at once.
  return { sent: () => (last = 0) };
}

/** The other side's "… is typing" in `box` (text in `label`), hidden after SHOWN_FOR_MS. */
export function typingIndicator(box, label) {
  let timer = null;
  const hide = () => {
    box.hidden = true;
    clearTimeout(timer);
  };
  return {
    show(text) {
      label.textContent = text;
      box.hidden = false;
      clearTimeout(timer);
      timer = setTimeout(hide, SHOWN_FOR_MS);
    },
    hide,
  };
}
