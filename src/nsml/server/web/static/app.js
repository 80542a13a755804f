// OpenNSML web UI: small, dependency-free helpers over the JSON API (plus Chart.js).
"use strict";

const api = async (path, options = {}) => {
  const init = { ...options, headers: { "X-NSML-Web": "1", ...(options.headers || {}) } };
  if (init.body && typeof init.body !== "string") {
    init.body = JSON.stringify(init.body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch("/api/v1" + path, init);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
};

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
};

const fmt = (value) => typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toPrecision(5)) : String(value ?? "");
const when = (iso) => iso ? new Date(iso).toLocaleString() : "";

// ---- sortable, filterable tables --------------------------------------------------
function sortable(table) {
  table.querySelectorAll("th[data-key]").forEach((th) => {
    th.addEventListener("click", () => {
      const key = th.dataset.key;
      const ascending = th.dataset.order !== "asc";
      table.querySelectorAll("th").forEach((other) => delete other.dataset.order);
      th.dataset.order = ascending ? "asc" : "desc";
      const rows = [...table.tBodies[0].rows].filter((row) => !row.classList.contains("empty"));
      rows.sort((a, b) => (a.dataset[key] || "").localeCompare(b.dataset[key] || "", undefined, { numeric: true }));
      if (!ascending) rows.reverse();
      rows.forEach((row) => table.tBodies[0].append(row));
    });
  });
}

function sessionFilters() {
  const table = document.getElementById("sessions");
  if (!table) return;
  const dataset = document.getElementById("filter-dataset");
  const status = document.getElementById("filter-status");
  const text = document.getElementById("filter-text");
  const apply = () => {
    const needle = text.value.toLowerCase();
    for (const row of table.tBodies[0].rows) {
      if (row.classList.contains("empty")) continue;
      const hay = `${row.dataset.name} ${row.dataset.args} ${row.dataset.description}`.toLowerCase();
      row.hidden = (dataset.value && row.dataset.dataset !== dataset.value)
        || (status.value && row.dataset.status !== status.value)
        || (needle && !hay.includes(needle));
    }
  };
  [dataset, status, text].forEach((input) => input.addEventListener("input", apply));
}

// ---- a session's page: live log, charts, checkpoint actions ------------------------
function sessionPage() {
  const root = document.getElementById("session");
  if (!root) return;
  const name = root.dataset.name;
  const log = document.getElementById("log");
  let offset = 0;
  let status = root.dataset.status;
  const live = () => status === "queued" || status === "running";

  async function tailLog() {
    const response = await fetch(`/api/v1/sessions/${name}/logs?offset=${offset}`);
    if (response.ok) {
      const text = await response.text();
      offset = Number(response.headers.get("x-log-offset") || offset + new TextEncoder().encode(text).length);
      if (text) {
        const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
        log.append(text);
        if (atBottom) log.scrollTop = log.scrollHeight;
      }
    }
  }

  const chartCanvas = document.getElementById("chart");
  const metricSelect = document.getElementById("metric");
  const compare = document.getElementById("compare");
  let chart = null;
  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

  async function drawChart() {
    const names = [name, ...[...compare.selectedOptions].map((o) => o.value)];
    const series = await Promise.all(names.map((n) => api(`/sessions/${n}/metrics`).catch(() => [])));
    const keys = [...new Set(series.flat().filter((p) => p.value !== null).map((p) => p.key))].sort();
    document.getElementById("no-metrics").hidden = keys.length > 0;
    // prefer a learning curve (train/loss, valid/accuracy) over counters such as epoch
    const chosen = metricSelect.value || keys.find((k) => k.includes("/") || /loss|acc|score/.test(k)) || keys[0];
    metricSelect.replaceChildren(...keys.map((k) => el("option", k === chosen ? { selected: "" } : {}, k)));
    if (!keys.length) return;
    const datasets = names.map((n, i) => ({
      label: n,
      data: series[i].filter((p) => p.key === chosen && p.value !== null).map((p) => ({ x: p.step, y: p.value })),
      borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length],
      tension: 0.2,
    }));
    if (!chart) {
      chart = new Chart(chartCanvas, {
        type: "line",
        data: { datasets },
        options: { animation: false, parsing: false, scales: { x: { type: "linear", title: { display: true, text: "step" } } } },
      });
    } else {
      chart.data.datasets = datasets;
      chart.update();
    }
    chartCanvas.dataset.points = String(datasets[0].data.length);
  }
  metricSelect.addEventListener("change", drawChart);
  compare.addEventListener("change", drawChart);

  async function refreshSession() {
    const current = await api(`/sessions/${name}`);
    status = current.status;
    const badge = document.getElementById("status");
    const idle = current.idle_since ? Math.floor((Date.now() - Date.parse(current.idle_since)) / 60000) : null;
    badge.textContent = idle === null ? status : `${status} (idle ${idle >= 60 ? `${Math.floor(idle / 60)}h ${String(idle % 60).padStart(2, "0")}m` : `${idle}m`})`;
    badge.className = idle === null ? `status ${status}` : `status ${status} idle`;
    document.getElementById("stop").disabled = !live();
    if (current.summary) {
      document.getElementById("summary").textContent = Object.entries(current.summary).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
    }
  }

  const result = document.getElementById("result");
  const show = (node, isError = false) => {
    result.hidden = false;
    result.className = isError ? "result error" : "result";
    result.replaceChildren(node);
  };

  document.getElementById("stop").addEventListener("click", async () => {
    try { await api(`/sessions/${name}/stop`, { method: "POST" }); await refreshSession(); } catch (e) { show(e.message, true); }
  });

  document.getElementById("checkpoints").addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const checkpoint = button.closest("tr").dataset.checkpoint;
    try {
      if (button.classList.contains("fork")) {
        const created = await api(`/sessions/${name}/fork`, { method: "POST", body: { checkpoint } });
        show(el("span", {}, "Started ", el("a", { href: `/sessions/${created.name}` }, created.name)));
        return;
      }
      const test = button.dataset.test === "1";
      show(test ? "Running infer on 10 test inputs…" : "Submitting…");
      const answer = await api("/submissions", { method: "POST", body: { session: name, checkpoint, test_mode: test } });
      if (test) {
        show(el("table", { class: "preview" },
          el("tr", {}, el("th", {}, "Input"), el("th", {}, "Probability"), el("th", {}, "Prediction")),
          ...answer.map((r) => el("tr", {}, el("td", {}, r.input), el("td", {}, fmt(r.probability)), el("td", {}, fmt(r.prediction))))));
        return;
      }
      let submission = answer;
      while (submission.status === "queued" || submission.status === "running") submission = await api(`/submissions/${submission.id}?wait=5`);
      if (submission.status === "scored") {
        show(el("span", { class: "scored" }, `Submission ${submission.id}: score ${fmt(submission.public_score)} `,
          el("a", { href: `/boards/${submission.dataset}` }, "see the board")));
      } else {
        show(`Submission ${submission.id} failed: ${submission.reason}`, true);
      }
    } catch (e) { show(e.message, true); }
  });

  const tick = async () => {
    await tailLog();
    if (live()) await refreshSession();
    await drawChart();
  };
  tick();
  setInterval(() => { if (live() || !offset) tick(); }, 1000);
}

// ---- a board: live ranking, moves since the previous view ---------------------------
function boardPage() {
  const root = document.getElementById("board-page");
  if (!root) return;
  const dataset = root.dataset.dataset;
  const memory = `nsml-board-${dataset}`;
  // ranks are compared with the ranking before the last change: the one seen on the
  // previous visit at first, then the one this page showed before the board moved
  let previous = JSON.parse(localStorage.getItem(memory) || "{}");
  let current = null;

  async function refresh() {
    const board = await api(`/datasets/${dataset}/board`);
    document.getElementById("board-state").textContent = board.closed
      ? "Closed: ranked by the private part of the test set."
      : "Live: ranked by the public part of the test set; updates by itself.";
    const ranks = Object.fromEntries(board.rows.map((row) => [row.owner, row.rank]));
    if (current !== null && JSON.stringify(ranks) !== JSON.stringify(current)) previous = current;
    current = ranks;
    const rows = board.rows.map((row) => {
      const before = previous[row.owner];
      const move = before === undefined ? "new" : before > row.rank ? "up" : before < row.rank ? "down" : "";
      const marker = move === "up" ? ` ▲${before - row.rank}` : move === "down" ? ` ▼${row.rank - before}` : move === "new" ? " new" : "";
      return el("tr", { class: `moved-${move || "none"}`, "data-owner": row.owner },
        el("td", {}, row.rank, el("span", { class: "move" }, marker)), el("td", {}, row.owner),
        el("td", { class: "score" }, fmt(row.score)), el("td", {}, row.submissions),
        el("td", {}, when(row.last_submitted_at || row.submitted_at)));
    });
    document.querySelector("#board tbody").replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: 5 }, "No scored submissions yet."))]));
    localStorage.setItem(memory, JSON.stringify(ranks));

    const mine = await api(`/datasets/${dataset}/submissions`);
    const limits = mine.limits;
    const parts = [];
    if (limits.daily_limit !== null) parts.push(`${Math.max(0, limits.daily_limit - limits.used_today)} of ${limits.daily_limit} left today`);
    if (limits.total_limit !== null) parts.push(`${Math.max(0, limits.total_limit - limits.used_total)} of ${limits.total_limit} left in all`);
    document.getElementById("limits").textContent = parts.join("; ") || "No submission limits.";
    document.querySelector("#mine tbody").replaceChildren(...mine.submissions.map((s) => el("tr", { class: s.status },
      el("td", {}, s.id), el("td", {}, s.session_name), el("td", {}, s.checkpoint), el("td", {}, s.status),
      el("td", {}, fmt(s.public_score)), el("td", {}, mine.closed ? fmt(s.private_score) : "hidden"),
      el("td", {}, when(s.created_at)), el("td", { class: "reason" }, (s.reason || "").split("\n")[0]))));
  }
  refresh();
  setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(sortable);
  sessionFilters();
  sessionPage();
  boardPage();
});
