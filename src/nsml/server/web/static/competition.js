// A competition's page: the live board (my row highlighted, baselines marked, moves since
// the last look), phases, my submissions and limits, and my final selection.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("competition");
  const dataset = root.dataset.dataset;
  const me = root.dataset.me;
  const memory = `nsml-board-${dataset}`;
  // ranks are compared with the ranking before the last change: the one seen on the
  // previous visit at first, then the one this page showed before the board moved
  let previous = JSON.parse(localStorage.getItem(memory) || "{}");
  let current = null;
  let selectionTouched = false;
  const result = document.getElementById("result");
  const show = (text, isError = false) => { result.hidden = false; result.className = isError ? "result error" : "result"; result.textContent = text; };

  async function drawBoard() {
    const board = await api(`/datasets/${dataset}/board`);
    const phase = board.phase ? `phase ${board.phase}; ` : "";
    document.getElementById("board-state").textContent = board.blind
      ? `${phase}blind until ${board.blind_until ? `${when(board.blind_until)}` : "the phase ends"}: scores are revealed then`
      : board.closed ? `${phase}closed, ranked by the private test set` : `${phase}live, public test set; updates by itself`;
    // a baseline has no rank and never moves: only the ranked rows are compared
    const ranks = Object.fromEntries(board.rows.filter((row) => !row.baseline).map((row) => [row.owner, row.rank]));
    if (current !== null && JSON.stringify(ranks) !== JSON.stringify(current)) previous = current;
    current = ranks;
    const rows = board.rows.map((row) => {
      const before = previous[row.owner];
      const move = row.baseline ? "" : before === undefined ? "new" : before > row.rank ? "up" : before < row.rank ? "down" : "";
      const marker = move === "up" ? ` ▲${before - row.rank}` : move === "down" ? ` ▼${row.rank - before}` : move === "new" ? " new" : "";
      const classes = [`moved-${move || "none"}`, row.owner === me ? "mine" : "", row.baseline ? "baseline" : ""].filter(Boolean).join(" ");
      return el("tr", { class: classes, "data-owner": row.owner },
        el("td", {}, row.rank ?? "–", el("span", { class: "move" }, marker)),
        el("td", {}, row.owner, row.owner === me ? el("span", { class: "tag you" }, "you") : "", row.baseline ? el("span", { class: "tag baseline" }, "baseline") : ""),
        el("td", { class: "score" }, fmt(row.score)), el("td", {}, row.session || ""), el("td", {}, row.checkpoint || ""),
        el("td", {}, row.submissions), el("td", { title: row.submitted_at }, when(row.submitted_at)));
    });
    document.querySelector("#board tbody").replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: 7 }, "No scored submissions yet."))]));
    localStorage.setItem(memory, JSON.stringify(ranks));
  }

  async function drawMine() {
    const mine = await api(`/datasets/${dataset}/submissions`);
    const limits = mine.limits;
    const parts = [];
    parts.push(limits.daily_limit === null ? "no daily limit" : `${Math.max(0, limits.daily_limit - limits.used_today)} of ${limits.daily_limit} left today`);
    parts.push(limits.total_limit === null ? "no total limit" : `${Math.max(0, limits.total_limit - limits.used_total)} of ${limits.total_limit} left in all`);
    document.getElementById("limits").textContent = parts.join("; ");
    const selectable = mine.submissions.some((s) => "selected" in s);
    document.querySelectorAll(".select-col").forEach((th) => { th.hidden = !selectable; });
    document.getElementById("selection-bar").hidden = !selectable;
    if (selectable) {
      const chosen = mine.submissions.filter((s) => s.selected).map((s) => s.id);
      const most = root.dataset.maxSelected;
      document.getElementById("selection-note").textContent =
        `Selected for the final ranking: ${chosen.length ? chosen.map((id) => `#${id}`).join(", ") : "none (your best public scores count)"}` + (most ? `; choose up to ${most}.` : ".");
    }
    if (selectionTouched) return;  // keep the boxes the participant is ticking
    document.querySelector("#mine tbody").replaceChildren(...(mine.submissions.length ? mine.submissions.map((s) => el("tr", { class: `${s.status}${s.selected ? " selected" : ""}`, "data-id": s.id },
      ...(selectable ? [el("td", {}, s.status === "scored" ? el("input", { type: "checkbox", class: "select", value: s.id, checked: Boolean(s.selected), "aria-label": `select ${s.id}` }) : "")] : []),
      el("td", {}, s.id, s.baseline ? el("span", { class: "tag baseline" }, "baseline") : ""), el("td", {}, s.session_name), el("td", {}, s.checkpoint),
      el("td", {}, s.status, s.queue_position ? ` (#${s.queue_position} in line)` : ""),
      el("td", { class: "score" }, fmt(s.public_score)), el("td", {}, mine.closed ? fmt(s.private_score) : "hidden"),
      el("td", {}, when(s.created_at)), el("td", { class: "reason" }, (s.reason || "").split("\n")[0])))
      : [el("tr", { class: "empty" }, el("td", { colspan: 9 }, "No submissions yet: press Submit on a checkpoint of one of your sessions."))]));
  }

  async function drawPhases() {
    let phases;
    try { phases = await api(`/datasets/${dataset}/phases`); } catch (_) { return; }  // a server without phases
    if (!phases.length) return;
    document.getElementById("phases-section").hidden = false;
    document.querySelector("#phases tbody").replaceChildren(...phases.map((p) => el("tr", { class: `phase-${p.state}` },
      el("td", {}, p.name), el("td", {}, when(p.starts_at)), el("td", {}, when(p.ends_at)),
      el("td", {}, el("span", { class: `status ${p.state === "running" ? "running" : p.state === "ended" ? "stopped" : "queued"}` }, p.state)),
      el("td", {}, p.blind ? "blind" : "live"),
      el("td", {}, [p.daily_limit !== null && p.daily_limit !== undefined ? `${p.daily_limit}/day` : "", p.total_limit !== null && p.total_limit !== undefined ? `${p.total_limit} in all` : ""].filter(Boolean).join(", ") || "–"))));
  }

  document.getElementById("mine").addEventListener("change", () => { selectionTouched = true; });
  document.getElementById("save-selection").addEventListener("click", async () => {
    const ids = [...document.querySelectorAll("#mine input.select:checked")].map((box) => Number(box.value));
    try {
      await api(`/datasets/${dataset}/selection`, { method: "POST", body: { ids } });
      selectionTouched = false;
      show(ids.length ? `Saved: ${ids.map((id) => `#${id}`).join(", ")} count for the final ranking.` : "Saved: your best public scores count.");
      await drawMine();
    } catch (e) { show(e.message, true); }
  });

  const refresh = async () => { await drawBoard(); await drawMine(); };
  drawPhases();
  refresh();
  setInterval(refresh, 2000);
});
