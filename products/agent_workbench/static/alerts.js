// Alerts while the workbench tab is in the background: a desktop notification (once the
// agent allowed them), a short sound, and the count in the title (app.js keeps that).

let audio = null;

/** Whether to offer the "Enable alerts" button: the browser can, and nobody decided yet. */
export function alertsWanted() {
  return "Notification" in window && Notification.permission === "default";
}

export async function askForAlerts() {
  if (!("Notification" in window)) return "unsupported";
  const answer = await Notification.requestPermission();
  beep(0); // an allowed gesture: lets the sound play later in the background
  return answer;
}

/** A short two-tone chime; silent where audio is not allowed yet. */
function beep(volume = 0.08) {
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [offset, freq] of [
      [0, 880],
      [0.12, 1320],
    ]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(volume, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.2);
    }
  } catch {
    // no audio: the notification and the title still tell
  }
}

/** Tell the agent about `text` if the tab is hidden: `kind` groups repeated notices. */
export function alertInBackground(text, kind) {
  if (!document.hidden) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted") {
    const note = new Notification("Agent workbench", { body: text, tag: `cs-${kind}` });
    note.onclick = () => {
      window.focus();
      note.close();
    };
  }
}
