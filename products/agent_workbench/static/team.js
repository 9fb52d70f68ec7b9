// The team: every agent's presence and load, and this agent's own status.

import { $, api, state, supervisorTag } from "/static/common.js";
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
      if (a.supervisor) who.append(" ", supervisorTag());
      li.append(dot, who, load);
      return li;
    });
  $("team").replaceChildren(...items);
  const me = state.team.get(state.agentId);
  if (me) $("presence").value = me.status;
}

// When each agent's last presence event came: a snapshot asked for before it must not undo
// it (the page's own "online" is published while its first GET /api/agents is on its way).
const heard = new Map();

export function applyPresence(p) {
  const known = state.team.get(p.agent_id) || { agent_id: p.agent_id };
  state.team.set(p.agent_id, { ...known, ...p });
  heard.set(p.agent_id, performance.now());
  renderTeam();
}

export async function loadTeam() {
  const asked = performance.now();
  const agents = await api("/api/agents");
  const fresher = (id) => (heard.get(id) ?? -1) > asked;
  // A fresher presence keeps its status and load; what only the snapshot says (whether the
  // agent is a supervisor) is kept too.
  state.team = new Map(
    agents.map((a) => {
      const heardSince = fresher(a.agent_id) ? state.team.get(a.agent_id) : null;
      return [a.agent_id, heardSince ? { ...a, ...heardSince } : a];
    }),
  );
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
