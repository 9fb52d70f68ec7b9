// The team: every agent's presence and load, and this agent's own status.

import { $, api, state } from "/static/common.js";
import { clearQueueError, queueNotice } from "/static/queue.js";

// --- The team ---------------------------------------------------------------------------

export function renderTeam() {
  const items = [...state.team.values()]
    .sort((a, b) => a.agent_id.localeCompare(b.agent_id))
    .map((a) => {
      const li = document.createElement("li");
      li.className = "team-item";
      li.dataset.status = a.status;
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.setAttribute("aria-hidden", "true");
      const who = document.createElement("span");
      who.textContent = a.agent_id === state.agentId ? `${a.agent_id} (you)` : a.agent_id;
      const load = document.createElement("span");
      load.className = "team-load";
      // Our own count is what this page holds (others' come with their presence).
      const chats = a.agent_id === state.agentId ? state.held.size : a.chats;
      load.textContent = `${a.status} · ${chats ?? 0}/${a.capacity ?? "?"}`;
      li.append(dot, who, load);
      return li;
    });
  $("team").replaceChildren(...items);
  const me = state.team.get(state.agentId);
  if (me) $("presence").value = me.status;
}

export async function loadTeam() {
  const agents = await api("/api/agents");
  state.team = new Map(agents.map((a) => [a.agent_id, a]));
  renderTeam();
}

export async function setPresence(status) {
  try {
    const me = await api("/api/agents/me/status", { method: "PUT", body: { status } });
    state.team.set(me.agent_id, me);
    renderTeam();
    clearQueueError("presence");
  } catch (error) {
    queueNotice(`Status not changed: ${error.message}`, "presence");
  }
}
