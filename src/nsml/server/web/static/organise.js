// The organiser's desk: phases (start the next), every submission (re-run, baselines,
// cancel), and the queue. A server without one of these features says so in place.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const dataset = document.getElementById("organise").dataset.dataset;
  const result = document.getElementById("result");
  const show = (text, isError = false) => { result.hidden = false; result.className = isError ? "result error" : "result"; result.textContent = text; };
  const missing = (e) => e.status === 404 || e.status === 405;
  const act = async (what, call) => {
    try { await call(); show(what); await Promise.all([drawPhases(), drawSubmissions(), drawQueue()]); } catch (e) { show(e.message, true); }
  };

  // ---- phases -------------------------------------------------------------------
  let nextPhase = null;
  async function drawPhases() {
    const note = document.getElementById("phases-note");
    let phases;
    try { phases = await api(`/datasets/${dataset}/phases`); } catch (e) {
      note.textContent = missing(e) ? "This server has no phases." : e.message;
      return;
    }
    note.textContent = phases.length ? "" : "One phase: the whole competition. Add phases with `nsml phase add`.";
    document.getElementById("phases").hidden = !phases.length;
    document.getElementById("phase-actions").hidden = !phases.length;
    nextPhase = phases.find((p) => p.state === "upcoming") || null;
    const start = document.getElementById("start-next");
    start.disabled = !nextPhase;
    start.textContent = nextPhase ? `Start phase ${nextPhase.name}` : "Start the next phase";
    document.querySelector("#phases tbody").replaceChildren(...phases.map((p) => el("tr", { "data-phase": p.name },
      el("td", {}, p.index), el("td", {}, p.name), el("td", {}, when(p.starts_at)), el("td", {}, when(p.ends_at)),
      el("td", {}, p.state), el("td", {}, p.blind ? "blind" : "live"),
      el("td", {}, [p.daily_limit != null ? `${p.daily_limit}/day` : "", p.total_limit != null ? `${p.total_limit} in all` : ""].filter(Boolean).join(", ") || "–"))));
  }
  document.getElementById("start-next").addEventListener("click", () => {
    if (!nextPhase || !confirm(`Start phase ${nextPhase.name}? Selected submissions are re-scored on its test set.`)) return;
    act(`Phase ${nextPhase.name} started.`, () => api(`/datasets/${dataset}/phases/${encodeURIComponent(nextPhase.name)}/start`, { method: "POST" }));
  });

  // ---- submissions --------------------------------------------------------------
  const table = document.getElementById("submissions");
  const chosen = () => [...table.querySelectorAll("tbody input.pick:checked")].map((box) => Number(box.value));
  const buttons = ["rerun", "mark-baseline", "unmark-baseline"].map((id) => document.getElementById(id));
  const updateButtons = () => { const none = chosen().length === 0; buttons.forEach((b) => { b.disabled = none; }); };
  // a re-scored submission shows its latest earlier score under the new one
  const scoreCell = (s, key) => {
    const earlier = (s.score_history || []).filter((h) => h[key] !== null && h[key] !== undefined).at(-1);
    const was = earlier && earlier[key] !== s[key]
      ? el("div", { class: "was muted", title: earlier.reason || "" }, `was ${fmt(earlier[key])}`) : "";
    return el("td", { class: "score" }, fmt(s[key]), was);
  };
  async function drawSubmissions() {
    const listing = await api(`/datasets/${dataset}/submissions?all=true`);
    document.getElementById("submissions-count").textContent = `${listing.submissions.length} in all`;
    const kept = new Set(chosen());
    table.tBodies[0].replaceChildren(...(listing.submissions.length ? listing.submissions.map((s) => el("tr", { class: s.baseline ? "baseline" : "", "data-id": s.id },
      el("td", { class: "pick" }, el("input", { type: "checkbox", class: "pick", value: s.id, checked: kept.has(s.id), "aria-label": `choose ${s.id}` })),
      el("td", {}, s.id, s.carried_from ? el("div", { class: "muted" }, `from #${s.carried_from}`) : "", s.selected ? el("span", { class: "tag selected" }, "selected") : ""),
      el("td", {}, s.owner, s.baseline ? el("span", { class: "tag baseline" }, "baseline") : ""),
      el("td", {}, s.session_name), el("td", {}, s.checkpoint),
      el("td", {}, s.status, s.queue_position ? ` #${s.queue_position}` : "", s.waiting_for ? el("div", { class: "muted" }, s.waiting_for) : ""),
      scoreCell(s, "public_score"), scoreCell(s, "private_score"), el("td", {}, when(s.created_at)),
      el("td", {}, s.status === "queued" || s.status === "running" ? el("button", { class: "cancel", "data-id": s.id }, "Cancel") : "")))
      : [el("tr", { class: "empty" }, el("td", { colspan: 10 }, "No submissions yet."))]));
    updateButtons();
  }
  table.addEventListener("change", (event) => {
    if (event.target.id === "pick-all") table.querySelectorAll("tbody input.pick").forEach((box) => { box.checked = event.target.checked; });
    updateButtons();
  });
  const cancel = (id) => act(`Submission ${id} cancelled.`, () => api(`/submissions/${id}/cancel`, { method: "POST" }));
  table.addEventListener("click", (event) => { const b = event.target.closest("button.cancel"); if (b) cancel(b.dataset.id); });
  const rerun = async (what, body) => {
    try {
      const answer = await api(`/datasets/${dataset}/rerun`, { method: "POST", body });
      show(`${what}: ${answer.queued.map((id) => `#${id}`).join(", ") || "none"} queued.`);
      await Promise.all([drawSubmissions(), drawQueue()]);
    } catch (e) { show(e.message, true); }
  };
  document.getElementById("rerun").addEventListener("click", () => {
    const ids = chosen();
    rerun(`Re-running ${ids.length} submission(s)`, { ids, all: false });
  });
  document.getElementById("rerun-all").addEventListener("click", () => {
    if (!confirm(`Re-run every submission of ${dataset}?`)) return;
    rerun("Re-running every submission", { ids: [], all: true });
  });
  const baseline = (flag) => {
    const ids = chosen();
    act(`${ids.length} submission(s) ${flag ? "marked" : "no longer marked"} as baseline.`,
      () => api(`/datasets/${dataset}/baselines`, { method: "POST", body: { ids, baseline: flag } }));
  };
  document.getElementById("mark-baseline").addEventListener("click", () => baseline(true));
  document.getElementById("unmark-baseline").addEventListener("click", () => baseline(false));

  // ---- queue: the slots each kind has and who holds them, then every entry in line --
  const slotLine = (slot) => {
    const holders = Object.entries(slot.holders).map(([owner, held]) => `${owner} (${held})`).join(", ");
    const cap = slot.per_user ? `, at most ${slot.per_user} per user` : "";
    return el("li", { "data-kind": slot.kind }, el("strong", {}, `${slot.kind} slots`),
      `: ${slot.in_use} of ${slot.total} in use${cap}`, holders ? `; held by ${holders}` : "");
  };
  async function drawQueue() {
    const note = document.getElementById("queue-note");
    const queue = document.getElementById("queue");
    let data;
    try { data = await api("/queue"); } catch (e) {
      note.textContent = missing(e) ? "This server does not list its queue." : e.message;
      queue.hidden = true;
      return;
    }
    document.getElementById("slots").replaceChildren(...data.slots.map(slotLine));
    note.textContent = data.entries.length ? "" : "Nothing is queued or running.";
    queue.hidden = !data.entries.length;
    queue.tBodies[0].replaceChildren(...data.entries.map((entry) => {
      const isSubmission = entry.kind === "submission";
      const place = entry.status === "running" ? "running" : entry.queue_position ? `#${entry.queue_position}` : "queued";
      return el("tr", { "data-kind": entry.kind, "data-id": entry.id, class: entry.status },
        el("td", {}, entry.kind), el("td", {}, isSubmission ? `#${entry.id}` : entry.name),
        el("td", {}, entry.owner), el("td", {}, entry.dataset),
        el("td", {}, isSubmission ? entry.checkpoint ?? "" : entry.gpus ? `${entry.gpus} GPU` : ""),
        el("td", {}, el("span", { class: `status ${entry.status}` }, place)),
        el("td", { class: "reason" }, entry.waiting_for || ""), el("td", { title: entry.since }, when(entry.since)),
        el("td", {}, isSubmission ? el("button", { class: "cancel", "data-id": entry.id }, "Cancel") : ""));
    }));
  }
  document.getElementById("queue").addEventListener("click", (event) => { const b = event.target.closest("button.cancel"); if (b) cancel(b.dataset.id); });

  drawPhases();
  drawSubmissions();
  drawQueue();
  // the queue and re-scored submissions move by themselves; ticked boxes are kept
  setInterval(() => { drawQueue(); drawSubmissions(); }, 2000);
});
