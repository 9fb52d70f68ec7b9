// Reports: GET /api/reports/summary as figures, a bar chart per day, and a table per agent.

import { makeApi } from "/shared/http.js";
import { formatDuration, readSaved } from "/shared/ui.js";

const AUTH_KEY = "cs-agent-auth";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const auth = readSaved(AUTH_KEY);
const api = makeApi({
  getToken: () => auth && auth.token,
  unreachable: "the service cannot be reached",
  onUnauthorized: () => signedOut(),
});

function signedOut() {
  $("signed-out").hidden = false;
  $("period").hidden = true;
}

const seconds = (v) => (v === null || v === undefined ? "–" : formatDuration(v));

function figures(total) {
  const items = [
    ["Conversations", total.conversations],
    ["Escalations", total.escalations],
    ["Abandoned", total.abandoned],
    ["Median wait", seconds(total.wait_median_seconds)],
    ["p90 wait", seconds(total.wait_p90_seconds)],
    ["Median handle time", seconds(total.handle_median_seconds)],
    ["Rating", total.rating_average === null ? "–" : `${total.rating_average} (${total.rating_count})`],
  ];
  $("figures").replaceChildren(
    ...items.map(([label, value]) => {
      const div = document.createElement("div");
      div.className = "figure";
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      div.append(dt, dd);
      return div;
    }),
  );
}

function chart(days) {
  const svg = $("chart");
  const width = svg.clientWidth || 600;
  const height = 220;
  const pad = 24;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const max = Math.max(1, ...days.map((d) => Math.max(d.conversations, d.escalations)));
  const slot = (width - pad) / Math.max(1, days.length);
  const bar = Math.max(2, slot / 2 - 2);
  days.forEach((d, i) => {
    const x = pad + i * slot;
    for (const [k, value, offset] of [["conversations", d.conversations, 0], ["escalations", d.escalations, bar]]) {
      const h = ((height - 2 * pad) * value) / max;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(x + offset));
      rect.setAttribute("y", String(height - pad - h));
      rect.setAttribute("width", String(bar));
      rect.setAttribute("height", String(h));
      rect.setAttribute("class", `bar-${k}`);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${d.date}: ${value} ${k}`;
      rect.append(title);
      svg.append(rect);
    }
    if (days.length <= 14 || i % Math.ceil(days.length / 14) === 0) {
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", String(x));
      label.setAttribute("y", String(height - 8));
      label.textContent = d.date.slice(5);
      svg.append(label);
    }
  });
  const top = document.createElementNS(SVG, "text");
  top.setAttribute("x", "0");
  top.setAttribute("y", String(pad - 8));
  top.textContent = String(max);
  svg.append(top);
}

function agents(rows) {
  $("agents").replaceChildren(
    ...rows.map((a) => {
      const tr = document.createElement("tr");
      const cells = [
        a.agent_id,
        a.conversations,
        seconds(a.wait_median_seconds),
        seconds(a.wait_p90_seconds),
        seconds(a.handle_median_seconds),
        a.rating_average === null ? "–" : `${a.rating_average} (${a.rating_count})`,
      ];
      for (const value of cells) {
        const td = document.createElement("td");
        td.textContent = String(value);
        tr.append(td);
      }
      return tr;
    }),
  );
}

async function show() {
  $("report-error").textContent = "";
  const params = new URLSearchParams();
  if ($("from").value) params.set("from", `${$("from").value}T00:00:00Z`);
  if ($("to").value) params.set("to", `${$("to").value}T23:59:59Z`);
  try {
    const report = await api(`/api/reports/summary?${params}`);
    figures(report.total);
    chart(report.days);
    agents(report.agents);
  } catch (error) {
    $("report-error").textContent = error.message;
  }
}

if (!auth || !auth.token) {
  signedOut();
} else {
  $("period").addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  show();
}
