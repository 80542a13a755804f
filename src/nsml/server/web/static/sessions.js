// The sessions table: filters, and ticking sessions to compare.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("sessions");
  const dataset = document.getElementById("filter-dataset");
  const status = document.getElementById("filter-status");
  const text = document.getElementById("filter-text");
  const compare = document.getElementById("compare");
  const pickAll = document.getElementById("pick-all");
  const rows = () => [...table.tBodies[0].rows].filter((row) => !row.classList.contains("empty"));
  const picked = () => rows().filter((row) => !row.hidden && row.querySelector("input.pick").checked);

  const update = () => {
    const count = picked().length;
    compare.disabled = count < 2;
    compare.textContent = count ? `Compare ${count}` : "Compare";
  };
  const apply = () => {
    const needle = text.value.toLowerCase();
    for (const row of rows()) {
      const hay = `${row.dataset.name} ${row.dataset.args} ${row.dataset.description}`.toLowerCase();
      row.hidden = Boolean((dataset.value && row.dataset.dataset !== dataset.value)
        || (status.value && row.dataset.status !== status.value)
        || (needle && !hay.includes(needle)));
    }
    const url = new URL(location.href);
    if (dataset.value) url.searchParams.set("dataset", dataset.value); else url.searchParams.delete("dataset");
    history.replaceState(null, "", url);
    update();
  };
  [dataset, status, text].forEach((input) => input.addEventListener("input", apply));
  table.addEventListener("change", (event) => {
    if (event.target === pickAll) rows().filter((row) => !row.hidden).forEach((row) => { row.querySelector("input.pick").checked = pickAll.checked; });
    update();
  });
  compare.addEventListener("click", () => {
    const query = picked().map((row) => `s=${encodeURIComponent(row.dataset.name)}`).join("&");
    location.href = `/compare?${query}`;
  });
  apply();
});
