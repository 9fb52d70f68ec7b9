// Canned replies: "/" in the reply box opens the team's list, filtered as one types; Up and
// Down choose, Enter inserts (with {customer_name} and {agent_name} filled in), Escape
// closes. The manager dialog adds and deletes them.

const $ = (id) => document.getElementById(id);

export function cannedReplies({ api, input, context }) {
  let replies = [];
  let shown = [];
  let chosen = 0;
  const picker = $("canned-picker");

  async function load() {
    try {
      replies = await api("/api/canned-replies");
    } catch {
      replies = [];
    }
  }

  function fill(content) {
    const { customerName, agentName } = context();
    return content
      .replaceAll("{customer_name}", customerName || "")
      .replaceAll("{agent_name}", agentName || "");
  }

  function close() {
    picker.hidden = true;
    shown = [];
  }

  function render() {
    const typed = input.value;
    if (!/^\/[a-z0-9_-]*$/.test(typed)) return close();
    const prefix = typed.slice(1);
    shown = replies.filter((r) => r.shortcut.startsWith(prefix));
    chosen = Math.min(chosen, Math.max(0, shown.length - 1));
    picker.replaceChildren(
      ...shown.map((r, index) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", String(index === chosen));
        const key = document.createElement("strong");
        key.textContent = `/${r.shortcut}`;
        const text = document.createElement("span");
        text.textContent = fill(r.content);
        li.append(key, text);
        li.addEventListener("mousedown", (event) => {
          event.preventDefault();
          chosen = index;
          insert();
        });
        return li;
      }),
    );
    picker.hidden = shown.length === 0;
  }

  function insert() {
    const reply = shown[chosen];
    if (!reply) return;
    input.value = fill(reply.content);
    input.dispatchEvent(new Event("input"));
    close();
    input.focus();
  }

  /** A keydown in the reply box: true when the picker took it. */
  function onKey(event) {
    if (picker.hidden) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      chosen = (chosen + (event.key === "ArrowDown" ? 1 : -1) + shown.length) % shown.length;
      render();
    } else if (event.key === "Enter" && !event.isComposing) {
      insert();
    } else if (event.key === "Escape") {
      close();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  input.addEventListener("input", () => {
    if (input.value === "/") load().then(render);
    else render();
  });

  // --- the manager --------------------------------------------------------------------

  function renderList() {
    $("canned-list").replaceChildren(
      ...replies.map((r) => {
        const li = document.createElement("li");
        const key = document.createElement("strong");
        key.textContent = `/${r.shortcut}`;
        const text = document.createElement("span");
        text.textContent = r.content;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "ghost small";
        remove.textContent = "Delete";
        remove.setAttribute("aria-label", `Delete /${r.shortcut}`);
        remove.addEventListener("click", async () => {
          try {
            await api(`/api/canned-replies/${r.id}`, { method: "DELETE" });
          } catch (error) {
            $("canned-error").textContent = error.message;
          }
          await load();
          renderList();
        });
        li.append(key, text, remove);
        return li;
      }),
    );
  }

  $("canned-manage").addEventListener("click", async () => {
    await load();
    renderList();
    $("canned-error").textContent = "";
    $("canned-dialog").showModal();
  });
  $("canned-close").addEventListener("click", () => $("canned-dialog").close());
  $("canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const shortcut = $("canned-shortcut").value.trim();
    const content = $("canned-content").value.trim();
    try {
      await api("/api/canned-replies", { method: "POST", body: { shortcut, content } });
      $("canned-shortcut").value = "";
      $("canned-content").value = "";
      $("canned-error").textContent = "";
    } catch (error) {
      $("canned-error").textContent = error.message;
    }
    await load();
    renderList();
  });

  load();
  return { onKey };
}
