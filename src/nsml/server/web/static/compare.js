// Sessions overlaid on every metric, one small chart per metric, colours as in the legend.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const items = [...document.querySelectorAll("#legend li")];
  const names = items.map((item) => item.dataset.name);
  items.forEach((item, i) => { item.querySelector(".swatch").style.background = PALETTE[i % PALETTE.length]; });
  const multiples = new SmallMultiples(document.getElementById("charts"));
  const points = await Promise.all(names.map((n) => api(`/sessions/${n}/metrics`).catch(() => [])));
  const keys = multiples.draw(names.map((name, i) => ({ name, color: PALETTE[i % PALETTE.length], points: points[i] })));
  document.getElementById("no-metrics").hidden = keys.length > 0;
  document.getElementById("charts").dataset.ready = String(keys.length);
});
