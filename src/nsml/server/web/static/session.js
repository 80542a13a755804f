// A session's page: live log and status, every metric as a small chart, checkpoint actions.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("session");
  const name = root.dataset.name;
  const log = document.getElementById("log");
  let offset = 0;
  let more = true;  // the last read brought text: a long log comes in pages
  let status = root.dataset.status;
  const live = () => status === "queued" || status === "running";

  async function tailLog() {
    const response = await fetch(`/api/v1/sessions/${name}/logs?offset=${offset}`);
    if (!response.ok) return;
    const text = await response.text();
    more = text.length > 0;
    offset = Number(response.headers.get("x-log-offset") || offset + new TextEncoder().encode(text).length);
    if (text) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.append(text);
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
  }

  const charts = document.getElementById("charts");
  const multiples = new SmallMultiples(charts);
  async function drawCharts() {
    const points = await api(`/sessions/${name}/metrics`).catch(() => []);
    const keys = multiples.draw([{ name, color: PALETTE[0], points }]);
    document.getElementById("no-metrics").hidden = keys.length > 0;
    charts.dataset.ready = String(keys.length);
  }

  async function refreshSession() {
    const current = await api(`/sessions/${name}`);
    status = current.status;
    const badge = document.getElementById("status");
    const idle = current.idle_since ? Math.floor((Date.now() - Date.parse(current.idle_since)) / 60000) : null;
    badge.textContent = idle === null ? status : `${status} (idle ${idle >= 60 ? `${Math.floor(idle / 60)}h ${String(idle % 60).padStart(2, "0")}m` : `${idle}m`})`;
    badge.className = idle === null ? `status ${status}` : `status ${status} idle`;
    document.getElementById("stop").disabled = !live();
    if (current.summary) {
      document.getElementById("summary").replaceChildren(...Object.entries(current.summary).map(([k, v]) =>
        el("span", { class: "kv" }, el("span", { class: "k" }, k), " ", fmt(v))));
    }
    if (!live()) location.reload();  // the reason, the exception and the last checkpoints
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

  const unfold = document.getElementById("unfold");
  if (unfold) {
    unfold.addEventListener("click", () => {
      const folded = document.querySelectorAll("#checkpoints tr.folded");
      const opening = [...folded].some((row) => row.hidden);
      folded.forEach((row) => { row.hidden = !opening; });
      unfold.textContent = opening ? "show fewer" : `show all ${document.querySelectorAll("#checkpoints tbody tr").length}`;
    });
  }

  // a test pair ("question<TAB>question") reads as two lines, not one run-on string
  const inputCell = (input) => el("td", {}, ...String(input).split("\t").map((part) => el("div", { class: "pair-part" }, part)));

  async function test(checkpoint) {
    show("Running infer on 10 test inputs…");
    const answer = await api("/submissions", { method: "POST", body: { session: name, checkpoint, test_mode: true } });
    show(el("table", { class: "preview" },
      el("tr", {}, el("th", {}, "Input"), el("th", {}, "Probability"), el("th", {}, "Prediction")),
      ...answer.map((r) => el("tr", {}, inputCell(r.input), el("td", {}, fmt(r.probability)), el("td", {}, fmt(r.prediction))))));
  }

  async function submit(checkpoint) {
    show("Submitting…");
    let submission = await api("/submissions", { method: "POST", body: { session: name, checkpoint, test_mode: false } });
    while (submission.status === "queued" || submission.status === "running") submission = await api(`/submissions/${submission.id}?wait=5`);
    if (submission.status === "scored") {
      show(el("span", { class: "scored" }, `Submission ${submission.id}: score ${fmt(submission.public_score)} `,
        el("a", { href: `/competitions/${submission.dataset}` }, "see the board")));
    } else {
      show(`Submission ${submission.id} ${submission.status}: ${(submission.reason || "").split("\n")[0]}`, true);
    }
  }

  const dialog = document.getElementById("confirm-submit");
  async function confirmSubmit(checkpoint) {
    document.getElementById("confirm-checkpoint").textContent = checkpoint;
    const note = document.getElementById("confirm-limits");
    note.textContent = "";
    api(`/datasets/${root.dataset.dataset}/submissions`).then((mine) => {
      const l = mine.limits;
      const parts = [];
      if (l.daily_limit !== null) parts.push(`${Math.max(0, l.daily_limit - l.used_today)} of ${l.daily_limit} left today`);
      if (l.total_limit !== null) parts.push(`${Math.max(0, l.total_limit - l.used_total)} of ${l.total_limit} left in all`);
      note.textContent = parts.length ? `You have ${parts.join(", ")}.` : "This competition has no submission limits.";
    }).catch(() => {});
    dialog.returnValue = "";
    dialog.showModal();
    await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
    return dialog.returnValue === "submit";
  }

  document.getElementById("checkpoints").addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const checkpoint = button.closest("tr").dataset.checkpoint;
    try {
      if (button.classList.contains("fork")) {
        const created = await api(`/sessions/${name}/fork`, { method: "POST", body: { checkpoint } });
        show(el("span", {}, "Started ", el("a", { href: `/sessions/${created.name}` }, created.name)));
      } else if (button.classList.contains("test")) {
        await test(checkpoint);
      } else if (await confirmSubmit(checkpoint)) {
        await submit(checkpoint);
      }
    } catch (e) { show(e.message, true); }
  });

  const tick = async () => {
    await tailLog();
    if (live()) await refreshSession();
    await drawCharts();
  };
  tick();
  setInterval(() => { if (live() || more) tick(); }, 1500);
});
